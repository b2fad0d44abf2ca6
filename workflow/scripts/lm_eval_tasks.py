"""Rule lm_eval_tasks: held-out items of the generated tasks as JSONL, and lm-eval task YAMLs over them."""

from pathlib import Path

from compbench import runlog, tasks, zeroshot
from compbench.artifacts import atomic_path

with runlog.to_file(snakemake.log[0]) as log:
    opts = snakemake.params.held_out
    n, seed = opts.get("eval_items", 200), opts.get("seed", 0)
    out = Path(snakemake.output[0])
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for t in snakemake.params.tasks:
            items = tasks.eval_items(t, n, seed)
            # data_files in the YAML are absolute paths of the final directory
            tasks.write_eval_jsonl(tmp / f"{t}.jsonl", items)
            zeroshot.write_task(t, out.resolve() / f"{t}.jsonl", tmp)
            log.info("task %s: %d held-out items, chance %.3f", t, len(items), tasks.chance(t))

"""Rule fusion_tasks: one task's train/test prompts and labels (generated here, or a hub data set)."""

from compbench import runlog
from compbench.artifacts import write_json
from compbench.fusion import tasks as text_tasks

with runlog.to_file(snakemake.log[0]) as log:
    p = snakemake.params
    task = text_tasks.build(p.spec, p.n_train, p.n_test, p.seed)
    log.info("task %s: %d train, %d test; e.g. %s", task["name"], len(task["train"]), len(task["test"]), task["train"][:2])
    write_json(snakemake.output[0], task)

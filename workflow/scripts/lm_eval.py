"""Rule lm_eval: zero-shot accuracy of one variant with lm-eval (tidy rows per task and metric),
and its per-item correctness (one row per task and metric, compbench.zeroshot.items)."""

import os

from compbench import zeroshot

lm = snakemake.params.lm_eval
# Offline unless a real (hub) task is asked for; HF_HOME inside the results tree.
zeroshot.offline_env(
    snakemake.params.hf_home,
    offline=not [t for t in lm["tasks"] if not t.startswith(zeroshot.PREFIX)] or os.environ.get("HF_HUB_OFFLINE") == "1",
)

import pandas as pd  # noqa: E402

from compbench import device as dev  # noqa: E402
from compbench import models, provenance, runlog  # noqa: E402
from compbench.artifacts import write_table  # noqa: E402

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w, spec = snakemake.wildcards, snakemake.params.spec
    include = snakemake.input.tasks[0] if snakemake.input.tasks else None
    with provenance.measure(device) as run:
        with zeroshot.materialised(snakemake.input.variant, dtype=None, tmp_root=os.environ.get("TMPDIR")) as model_dir:
            res = zeroshot.evaluate(
                model_dir,
                lm["tasks"],
                include,
                lm["batch_size"],
                lm.get("limit"),
                str(device),
                models.eval_dtype(spec),
                log_samples=True,
            )
    rec = provenance.stamp({"model": spec, "lm_eval": lm}, 0, run)
    rows = zeroshot.tidy(res, model=w.model, variant=w.variant)
    for r in rows:
        r["chance"] = zeroshot.chance(r["dataset"])
        r.update(rec)
    df = pd.DataFrame(rows)
    log.info("%s/%s lm-eval (%.1f s):\n%s", w.model, w.variant, rec["wall_s"], df[["dataset", "metric", "value", "chance"]].to_string())
    write_table(snakemake.output.table, df)
    items = zeroshot.items(res, model=w.model, variant=w.variant)
    write_table(snakemake.output.per_item, pd.DataFrame(items, columns=["model", "variant", "dataset", "metric", "n", "correct"]))

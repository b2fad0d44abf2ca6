"""Rule lm_eval: zero-shot accuracy of one batch of variants with lm-eval (tidy rows per variant,
task and metric) and their per-item correctness (compbench.zeroshot.evaluate_batch; unchanged
variants come from the result cache)."""

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
from compbench import runlog  # noqa: E402
from compbench.artifacts import write_table  # noqa: E402
from compbench.resultcache import ResultCache  # noqa: E402

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    p, w = snakemake.params, snakemake.wildcards
    rows, items = zeroshot.evaluate_batch(
        w.model,
        p.variants,
        lm,
        p.spec,
        snakemake.input.tasks[0] if snakemake.input.tasks else None,
        dev.pick(p.device),
        cache=ResultCache(p.cache),
        code_files=[*snakemake.input.code, __file__],
        log=log,
        tmp_root=os.environ.get("TMPDIR"),
    )
    write_table(snakemake.output.table, pd.DataFrame(rows))
    write_table(snakemake.output.per_item, pd.DataFrame(items, columns=zeroshot.ITEM_COLUMNS))

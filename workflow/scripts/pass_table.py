"""Rule pass_table: every PASS-line record in one tidy table (one row per method, budget, metric)."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table

with runlog.to_file(snakemake.log[0]) as log:
    t = pd.concat([read_table(p) for p in snakemake.input.records], ignore_index=True)
    wide = t.pivot_table(index=["method", "target"], columns="metric", values="value")
    log.info("\n%s", wide.to_string())
    write_table(snakemake.output[0], t)

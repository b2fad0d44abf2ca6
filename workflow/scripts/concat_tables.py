"""Concatenate tidy tables (input `tables`: one row per model, variant, setting, metric)."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table

with runlog.to_file(snakemake.log[0]) as log:
    df = pd.concat([read_table(p) for p in snakemake.input.tables], ignore_index=True)
    log.info("%d rows from %d tables", len(df), len(snakemake.input.tables))
    write_table(snakemake.output[0], df)

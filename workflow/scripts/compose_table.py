"""Rule compose_table: every run's metrics in one table, and the composability
metrics (order-free error, order sensitivity) of every pair."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table
from compbench.compose import composability

with runlog.to_file(snakemake.log[0]) as log:
    runs = pd.concat([read_table(f) for f in snakemake.input.runs], ignore_index=True)
    runs = runs.fillna({"first": "", "second": "", "first_category": "", "second_category": ""})
    metrics = composability.composability(runs)
    log.info("%d run rows; %d pair-metric rows", len(runs), len(metrics))
    write_table(snakemake.output.runs, runs)
    write_table(snakemake.output.metrics, metrics)

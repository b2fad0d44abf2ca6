"""Rule pass_table: every PASS-line record of every seed in one tidy table (one row per method, budget,
seed, metric), the per-image correctness behind it, and per method, budget and metric the mean, sd and
95 % interval over seeds or test images (compbench.vision.summary)."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table
from compbench.vision import summary

with runlog.to_file(snakemake.log[0]) as log:
    t = pd.concat([read_table(p) for p in snakemake.input.records], ignore_index=True)
    items = pd.concat([read_table(p) for p in snakemake.input.images], ignore_index=True)
    summ = summary.summary(t, items)
    log.info("\n%s", summ[summ.metric == "accuracy"].to_string())
    write_table(snakemake.output.table, t)
    write_table(snakemake.output.images, items)
    write_table(snakemake.output.summary, summ)

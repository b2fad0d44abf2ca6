"""Rule calibration_table: the study's tidy table and the paper-shaped table."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table
from compbench.calibration_study import study as calibration_study

with runlog.to_file(snakemake.log[0]) as log:
    rec = pd.concat([read_table(p) for p in snakemake.input.records], ignore_index=True)
    zs = pd.concat([read_table(p) for p in snakemake.input.zeroshot], ignore_index=True)
    ppl = pd.concat([read_table(p) for p in snakemake.input.perplexity], ignore_index=True)
    tidy = calibration_study.table(rec, ppl, zs)
    paper = calibration_study.paper_table(tidy)
    log.info("\n%s", paper.to_string())
    write_table(snakemake.output.tidy, tidy)
    write_table(snakemake.output.paper, paper)

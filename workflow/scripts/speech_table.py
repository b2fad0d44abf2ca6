"""Rule speech_table: every run and seed in one tidy table, the per-utterance errors behind it, and
per run and metric the mean, sd and 95 % interval over seeds or test utterances (compbench.speech.summary)."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table
from compbench.speech import summary

with runlog.to_file(snakemake.log[0]) as log:
    table = pd.concat([read_table(p) for p in snakemake.input.tables], ignore_index=True)
    items = summary.items_table([read_table(p) for p in snakemake.input.hyps])
    summ = summary.summary(table, items)
    log.info("%d rows from %d runs x seeds; %d utterance results", len(table), len(snakemake.input.tables), len(items))
    log.info("\n%s", summ[summ.metric == "test_wer"].to_string())
    write_table(snakemake.output.table, table)
    write_table(snakemake.output.utterances, items)
    write_table(snakemake.output.summary, summ)

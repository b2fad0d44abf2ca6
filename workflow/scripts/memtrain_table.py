"""Rule memtrain_table: one tidy table of every run (+ the spine's perplexity of the fine-tuned variants)."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table
from compbench.memtrain import plots

with runlog.to_file(snakemake.log[0]) as log:
    summary = pd.concat([read_table(p) for p in snakemake.input.summaries], ignore_index=True)
    spine = (
        pd.concat([read_table(p) for p in snakemake.input.perplexity], ignore_index=True) if snakemake.input.perplexity else pd.DataFrame()
    )
    table = plots.add_spine_perplexity(summary, spine)
    write_table(snakemake.output.table, table)
    write_table(snakemake.output.curves, pd.concat([read_table(p) for p in snakemake.input.curves], ignore_index=True))
    refresh = [read_table(p) for p in snakemake.input.refresh]
    write_table(snakemake.output.refresh, pd.concat(refresh, ignore_index=True))
    log.info("\n%s", plots.wide(table).to_string())

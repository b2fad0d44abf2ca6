"""Rule figure_speech: LR-SMS WER vs parameters, DDP-ASR WER vs time, MSRS mask density."""

from compbench import figures, runlog
from compbench.artifacts import read_table
from compbench.speech import plots

with runlog.to_file(snakemake.log[0]) as log:
    table, summary = read_table(snakemake.input.table), read_table(snakemake.input.summary)
    figures.save(plots.lrsms(table, summary), snakemake.output.lrsms)
    figures.save(plots.ddp(table, summary), snakemake.output.ddp)
    figures.save(plots.msrs([read_table(p) for p in snakemake.input.curves], table), snakemake.output.msrs)
    log.info("speech figures from %d runs", table.run.nunique())

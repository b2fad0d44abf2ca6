"""Rule figure_memtrain: perplexity vs memory, loss curves, SVD counts."""

from compbench import figures, runlog
from compbench.artifacts import read_table
from compbench.memtrain import plots

with runlog.to_file(snakemake.log[0]):
    table = read_table(snakemake.input.table)
    curves = read_table(snakemake.input.curves)
    figures.save(plots.memory_figure(table), snakemake.output.memory)
    figures.save(plots.curves_figure(curves), snakemake.output.curves)
    figures.save(plots.svd_figure(curves), snakemake.output.svd)

"""Rule figure_tradeoff: the size-vs-quality plane of a model with its Pareto front."""

from compbench import figures, runlog
from compbench.artifacts import read_table
from compbench.tradeoff import plots

with runlog.to_file(snakemake.log[0]):
    m, ds = snakemake.wildcards.model, snakemake.params.dataset
    t = read_table(snakemake.input.table)
    figures.save(plots.plane(t, ds, f"every compressed variant of {m}: stored size vs quality"), snakemake.output[0])

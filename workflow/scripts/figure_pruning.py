from compbench import figures, runlog
from compbench.artifacts import read_table
from compbench.prune import plots as prune_plots

with runlog.to_file(snakemake.log[0]):
    t = read_table(snakemake.input.table)
    m = snakemake.wildcards.model
    figures.save(prune_plots.pruning_curves(t, f"pruning {m}"), snakemake.output.curve)
    figures.save(prune_plots.allocation_bars(t, f"per-block sparsity, {m}"), snakemake.output.allocation)
    figures.save(prune_plots.pruning_paper_table(t, snakemake.params.anchors, f"{m} vs the AlphaPruning paper"), snakemake.output.paper)
    figures.save(prune_plots.alpha_sweep(t, f"AlphaPruning epsilon sweep, {m}"), snakemake.output.sweep)

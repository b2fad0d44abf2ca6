"""Rule figure_compose: composability heatmaps and the sparsity sweep."""

from compbench import figures, runlog
from compbench.artifacts import read_table
from compbench.compose import plots as compose_plots

with runlog.to_file(snakemake.log[0]):
    m = snakemake.wildcards.model
    runs, metrics = read_table(snakemake.input.runs), read_table(snakemake.input.metrics)
    figures.save(compose_plots.heatmaps(metrics, f"composing interventions, {m}"), snakemake.output.heatmap)
    figures.save(
        compose_plots.sparsity_curves(runs, snakemake.params.sweep, f"editing and pruning, both orders, {m}"), snakemake.output.sweep
    )

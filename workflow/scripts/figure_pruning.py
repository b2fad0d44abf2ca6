from compbench import figures, htmltable, runlog
from compbench.artifacts import read_table, write_text
from compbench.prune import plots as prune_plots

with runlog.to_file(snakemake.log[0]):
    t = read_table(snakemake.input.table)
    m = snakemake.wildcards.model
    anchors = snakemake.params.anchors
    figures.save(prune_plots.pruning_curves(t, f"pruning {m}"), snakemake.output.curve)
    figures.save(prune_plots.allocation_bars(t, f"per-block sparsity, {m}"), snakemake.output.allocation)
    figures.save(prune_plots.pruning_paper_table(t, anchors, f"{m} vs the AlphaPruning paper"), snakemake.output.paper)
    paper = prune_plots.paper_table(t, anchors).reset_index()
    write_text(snakemake.output.paper_html, htmltable.to_html(paper, f"pruning-paper-table-{m}"))
    figures.save(prune_plots.alpha_sweep(t, f"AlphaPruning epsilon sweep, {m}"), snakemake.output.sweep)

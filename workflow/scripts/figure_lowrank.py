"""Rule figure_lowrank: kept ranks, perplexity vs rank reduction, fine-tuning runs."""

import pandas as pd

from compbench import figures, runlog
from compbench.artifacts import read_table
from compbench.lowrank import plots as lowrank_plots

with runlog.to_file(snakemake.log[0]):
    m = snakemake.wildcards.model
    t, ranks = read_table(snakemake.input.table), read_table(snakemake.input.ranks)
    curves = pd.concat([read_table(p) for p in snakemake.input.curves], ignore_index=True) if snakemake.input.curves else pd.DataFrame()
    figures.save(lowrank_plots.kept_ranks(ranks, f"kept rank per matrix, {m}"), snakemake.output.ranks)
    figures.save(lowrank_plots.perplexity_vs_ratio(t, f"low-rank compression, {m}"), snakemake.output.curve)
    figures.save(lowrank_plots.finetune_panel(curves, t, f"fine-tuning the compressed model, {m}"), snakemake.output.finetune)

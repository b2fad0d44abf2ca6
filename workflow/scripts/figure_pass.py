"""Rule figure_pass: accuracy vs MACs per method, and kept channels per unit."""

from compbench import figures, runlog
from compbench.artifacts import read_table
from compbench.vision import plots as vision_plots

with runlog.to_file(snakemake.log[0]):
    t = read_table(snakemake.input.table)
    figures.save(vision_plots.pass_accuracy(t, read_table(snakemake.input.summary)), snakemake.output.accuracy)
    figures.save(vision_plots.pass_channels(t), snakemake.output.channels)

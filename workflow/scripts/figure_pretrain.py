from compbench import figures, runlog
from compbench.artifacts import read_table

with runlog.to_file(snakemake.log[0]):
    curve = read_table(snakemake.input.curve)
    figures.save(figures.pretrain_curve(curve, f"pretraining of {snakemake.wildcards.model}"), snakemake.output[0])

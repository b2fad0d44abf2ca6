from compbench import figures, runlog
from compbench.artifacts import read_table

with runlog.to_file(snakemake.log[0]):
    figures.save(figures.perplexity_table(read_table(snakemake.input.table)), snakemake.output[0])

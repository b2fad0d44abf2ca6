"""Figures of the spectra stage: per-block alpha by xmin rule, and fitted ESDs."""

from compbench import figures, runlog
from compbench.artifacts import load_arrays, read_table
from compbench.spectra import plots as spectra_plots

with runlog.to_file(snakemake.log[0]):
    cfg = snakemake.params.spectra
    model = snakemake.wildcards.model
    blocks = read_table(snakemake.input.blocks)
    matrices = read_table(snakemake.input.matrices)
    figures.save(
        spectra_plots.block_alpha(blocks, cfg["rules"], f"{model}: per-block power-law alpha by xmin rule"), snakemake.output.alpha
    )
    names = spectra_plots.pick_examples(matrices, cfg["default_rule"], cfg["esd_examples"])
    eigs = load_arrays(snakemake.input.eigenvalues)
    title = f"{model}: ESDs with the lowest to highest alpha ({cfg['default_rule']} rule)"
    figures.save(spectra_plots.esd_examples(matrices, eigs, names, cfg["rules"], cfg["default_rule"], title), snakemake.output.esd)

"""Rule figure_calibration: heatmap of accuracy change vs dense (calibration set x task)."""

from compbench import runlog
from compbench.artifacts import atomic_path, read_table
from compbench.calibration_study import plots as calibration_plots

with runlog.to_file(snakemake.log[0]):
    t = read_table(snakemake.input.table)
    with atomic_path(snakemake.output[0], suffix=".png") as tmp:
        calibration_plots.heatmap(t, tmp, title=f"calibration data study, {snakemake.wildcards.model}")

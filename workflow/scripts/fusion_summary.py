"""Rule fusion_summary: Pareto fronts per method (figure) and their hypervolumes (table)."""

from compbench import figures, runlog
from compbench.artifacts import read_table, write_table
from compbench.fusion import pareto
from compbench.fusion import plots as fusion_plots

with runlog.to_file(snakemake.log[0]) as log:
    t = read_table(snakemake.input.points)
    names = snakemake.params.tasks
    ref = snakemake.params.reference
    wide, hv = pareto.fronts(t, names, ref)
    router = read_table(snakemake.input.router)
    for _, r in router.iterrows():
        hv[r["metric"]] = r["value"]
    hv.insert(0, "model", snakemake.wildcards.model)
    log.info("\n%s", hv.to_string())
    write_table(snakemake.output.table, hv)
    figures.save(fusion_plots.fusion_fronts(wide, hv, names, ref), snakemake.output.figure)

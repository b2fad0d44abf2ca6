"""Rule fusion_summary: per seed and method the hypervolume (table), every seed's evaluated models, per
method and metric the mean, sd and 95 % interval over seeds or test items (compbench.fusion.summary), and
the Pareto fronts of the mean accuracies over seeds (figure)."""

import pandas as pd

from compbench import figures, runlog
from compbench.artifacts import read_table, write_table
from compbench.fusion import pareto, summary
from compbench.fusion import plots as fusion_plots

with runlog.to_file(snakemake.log[0]) as log:
    points = pd.concat([read_table(p) for p in snakemake.input.points], ignore_index=True)
    names, ref = snakemake.params.tasks, snakemake.params.reference
    hv = summary.per_seed(points, names, ref)
    for p in snakemake.input.routers:
        router = read_table(p)
        for _, r in router.iterrows():
            hv.loc[hv.seed == int(r["seed"]), r["metric"]] = r["value"]
    hv.insert(0, "model", snakemake.wildcards.model)
    summ = summary.summary(hv, points, names, ref)
    log.info("\n%s", summ[summ.metric == "hypervolume"].to_string())
    write_table(snakemake.output.table, hv)
    write_table(snakemake.output.points, points)
    write_table(snakemake.output.summary, summ)
    wide, _ = pareto.fronts(points, names, ref)  # accuracies averaged over seeds
    mean_hv = summ[summ.metric == "hypervolume"].rename(columns={"mean": "hypervolume"})
    figures.save(fusion_plots.fusion_fronts(wide, mean_hv, names, ref), snakemake.output.figure)

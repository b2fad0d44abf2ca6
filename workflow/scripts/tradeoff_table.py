"""Rule tradeoff_table: every variant of a model with its stored bytes, effective parameters,
perplexity, zero-shot accuracy and Pareto-front flags (compbench.tradeoff.plane)."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table
from compbench.tradeoff import plane

with runlog.to_file(snakemake.log[0]) as log:
    inv = plane.inventory(read_table(snakemake.input.matrices))
    ppl = pd.concat([read_table(p) for p in snakemake.input.perplexity], ignore_index=True)
    zs = pd.concat([read_table(p) for p in snakemake.input.zeroshot], ignore_index=True) if snakemake.input.zeroshot else None
    points = {v: tuple(lp) for v, lp in snakemake.params.plane.items()}
    t = plane.table(snakemake.wildcards.model, points, inv, ppl, zs, snakemake.params.dataset)
    log.info("\n%s", t.drop(columns=["format"]).to_string())
    write_table(snakemake.output[0], t)

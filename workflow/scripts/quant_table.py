"""Rule quant_table: one row per quantised variant (and dense) and evaluation data set: the recipe,
the stored size (compbench.tradeoff.storage, as the trade-off table) and the perplexity."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table
from compbench.tradeoff import plane, storage

with runlog.to_file(snakemake.log[0]) as log:
    rec = pd.concat([read_table(p) for p in snakemake.input.records], ignore_index=True)
    ppl = pd.concat([read_table(p) for p in snakemake.input.perplexity], ignore_index=True)
    ppl = ppl[ppl.metric == "perplexity"][["model", "variant", "dataset", "value"]].rename(columns={"value": "perplexity"})
    keep = ["model", "variant", "method", "bits", "group_size", "on", "max_abs_change", "mean_alpha", "wall_s", "peak_rss_mb", "device"]
    dense = pd.DataFrame([{"model": snakemake.wildcards.model, "variant": "dense", "method": "dense", "bits": 16}])
    table = pd.concat([dense, rec[[k for k in keep if k in rec]]], ignore_index=True)
    inv = plane.inventory(read_table(snakemake.input.matrices))
    n = sum(r * c for r, c in inv.values())
    sizes = {v: storage.size(p, inv) for v, p in zip(snakemake.params.variants, snakemake.input.variants)}
    table["bytes"] = table.variant.map(lambda v: sizes[v].bytes)
    table["bits_per_weight"] = table.variant.map(lambda v: sizes[v].bits / n)
    table = table.merge(ppl, on=["model", "variant"], how="left")
    log.info("\n%s", table[["variant", "bits_per_weight", "dataset", "perplexity"]].to_string())
    write_table(snakemake.output[0], table)

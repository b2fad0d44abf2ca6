"""Rule quant_table: one row per quantised variant (and dense) and evaluation data set, with its perplexity."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table

with runlog.to_file(snakemake.log[0]) as log:
    rec = pd.concat([read_table(p) for p in snakemake.input.records], ignore_index=True)
    ppl = pd.concat([read_table(p) for p in snakemake.input.perplexity], ignore_index=True)
    ppl = ppl[ppl.metric == "perplexity"][["model", "variant", "dataset", "value"]].rename(columns={"value": "perplexity"})
    keep = [
        "model",
        "variant",
        "method",
        "bits",
        "group_size",
        "on",
        "avg_bits",
        "max_abs_change",
        "mean_alpha",
        "wall_s",
        "peak_rss_mb",
        "device",
    ]
    dense = pd.DataFrame([{"model": snakemake.wildcards.model, "variant": "dense", "method": "dense", "bits": 16, "avg_bits": 16.0}])
    table = pd.concat([dense, rec[[k for k in keep if k in rec]]], ignore_index=True).merge(ppl, on=["model", "variant"], how="left")
    log.info("\n%s", table[["variant", "avg_bits", "dataset", "perplexity"]].to_string())
    write_table(snakemake.output[0], table)

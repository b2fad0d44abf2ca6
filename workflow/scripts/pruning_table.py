"""Rule pruning_table: one row per pruned variant (and dense) with its perplexity."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table

with runlog.to_file(snakemake.log[0]) as log:
    rec = pd.concat([read_table(p) for p in snakemake.input.records], ignore_index=True)
    ppl = pd.concat([read_table(p) for p in snakemake.input.perplexity], ignore_index=True)
    ppl = ppl[ppl.metric == "perplexity"][["model", "variant", "dataset", "value"]].rename(columns={"value": "perplexity"})
    keep = ["model", "variant", "method", "allocation", "target", "sparsity", "hyper", "ratios", "wall_s", "peak_rss_mb", "device"]
    dense = pd.DataFrame(
        [{"model": snakemake.wildcards.model, "variant": "dense", "method": "dense", "allocation": "dense", "target": 0.0, "sparsity": 0.0}]
    )
    table = pd.concat([dense, rec[keep]], ignore_index=True).merge(ppl, on=["model", "variant"], how="left")
    log.info("\n%s", table[["variant", "sparsity", "dataset", "perplexity"]].to_string())
    write_table(snakemake.output[0], table)

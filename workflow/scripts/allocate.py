"""Rule allocate: per-block sparsity ratios of one allocation rule at one target."""

import json

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table
from compbench.spectra import allocate

with runlog.to_file(snakemake.log[0]) as log:
    w, p = snakemake.wildcards, snakemake.params
    blocks = read_table(snakemake.input.blocks).sort_values("block")
    metrics = {"alpha": blocks[f"alpha_{p.alpha_rule}"].to_numpy()}
    if snakemake.input.lod:
        metrics["lod"] = read_table(snakemake.input.lod).sort_values("block")["lod"].to_numpy()
    ratios, info = allocate.allocate(p.rule, float(w.sparsity), blocks["params"].to_numpy(), metrics, p.hyper, on_overflow=p.on_overflow)
    if info["clipped"]:
        log.warning("allocation clipped: %s", info.get("overflow"))
    log.info("ratios %s", ratios)
    write_table(
        snakemake.output[0],
        pd.DataFrame(
            {
                "block": blocks["block"],
                "params": blocks["params"],
                "ratio": ratios,
                "raw_ratio": info["raw_ratios"],
                "allocation": p.rule,
                "target": float(w.sparsity),
                "hyper": json.dumps(info["hyper"]),
                "clipped": info["clipped"],
                "alpha_rule": p.alpha_rule,
            }
        ),
    )

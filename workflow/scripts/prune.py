"""Rules prune / prune_nm: prune a model into a masked variant (masks + changed values)."""

import json

import pandas as pd
import torch

from compbench import device as dev
from compbench import models, provenance, runlog
from compbench.artifacts import load_tensors, read_table, write_table
from compbench.prune import masked
from compbench.prune.methods import PRUNERS, prune_model

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w = snakemake.wildcards
    nm = snakemake.params.nm
    method = PRUNERS.get(w.method)  # fails fast, naming the allowed methods
    ratios, recipe = None, {"method": w.method, "dtype": snakemake.params.dtype}
    if nm:
        recipe.update(allocation=f"{nm[0]}:{nm[1]}", target=nm[0] / nm[1], nm=nm)
    else:
        alloc = read_table(snakemake.input.allocation)
        ratios = {int(b): float(r) for b, r in zip(alloc["block"], alloc["ratio"])}
        recipe.update(allocation=w.allocation, target=float(w.sparsity), ratios=ratios, hyper=alloc["hyper"].iloc[0])
    ids = load_tensors(snakemake.input.calibration)["ids"] if method.needs_calibration else None
    with provenance.measure(device) as run:
        model = models.load(snakemake.input.model, device=device, dtype=getattr(torch, snakemake.params.dtype))
        masks, changed = prune_model(model, w.method, ratios, nm, ids, device)
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    recipe["sparsity"] = 1 - kept / total
    log.info("%s: realised sparsity %.4f over %d decoder weights", w, recipe["sparsity"], total)
    masked.save(snakemake.output.variant, snakemake.input.model, masks, changed, recipe)
    rec = provenance.stamp(recipe, None, run)
    write_table(
        snakemake.output.record,
        pd.DataFrame(
            [
                {
                    "model": w.model,
                    "variant": snakemake.output.variant.rstrip("/").split("/")[-1],
                    "method": w.method,
                    "allocation": recipe["allocation"],
                    "target": recipe["target"],
                    "sparsity": recipe["sparsity"],
                    "hyper": recipe.get("hyper", "{}"),
                    "ratios": json.dumps({str(k): v for k, v in (ratios or {}).items()}) if ratios else "",
                    **rec,
                }
            ]
        ),
    )

"""Rule prune_calibration: one cell of the calibration study, a model pruned at a
uniform sparsity (as in the paper) with Wanda or SparseGPT on one calibration set."""

import pandas as pd
import torch

from compbench import device as dev
from compbench import models, provenance, runlog
from compbench.artifacts import load_tensors, write_table
from compbench.blocks import decoder_blocks
from compbench.prune import masked
from compbench.prune.methods import PRUNERS, prune_model

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w = snakemake.wildcards
    method = PRUNERS.get(w.method)  # fails fast, naming the allowed methods
    sparsity = float(w.sparsity)
    ids = load_tensors(snakemake.input.calibration)["ids"] if method.needs_calibration else None
    with provenance.measure(device) as run:
        model = models.load(snakemake.input.model, device=device, dtype=getattr(torch, snakemake.params.dtype))
        ratios = {b: sparsity for b in range(len(decoder_blocks(model)))}
        masks, changed = prune_model(model, w.method, ratios, None, ids, device)
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    recipe = {
        "method": w.method,
        "allocation": "uniform",
        "target": sparsity,
        "calibration": w.calib,
        "sparsity": 1 - kept / total,
        "dtype": snakemake.params.dtype,
    }
    log.info("%s: realised sparsity %.4f over %d decoder weights", w, recipe["sparsity"], total)
    masked.save(snakemake.output.variant, snakemake.input.model, masks, changed, recipe)
    rec = provenance.stamp(recipe, None, run)
    write_table(
        snakemake.output.record,
        pd.DataFrame(
            [
                {
                    "model": w.model,
                    "variant": f"calib-{w.calib}-{w.method}-{w.sparsity}",
                    "method": w.method,
                    "calibration": w.calib,
                    "target": sparsity,
                    "sparsity": recipe["sparsity"],
                    **rec,
                }
            ]
        ),
    )

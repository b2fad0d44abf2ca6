"""Rules quantize / quantize_pruned: weight-only quantisation of a model (or of a pruned
variant) into a quant variant (codes + scales, compbench.quant.variant)."""

import pandas as pd

from compbench import device as dev
from compbench import models, provenance, runlog, variants
from compbench.artifacts import load_tensors, write_table
from compbench.quant import variant as quant_variant
from compbench.quant.methods import QUANTISERS, quantise_model

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w = snakemake.wildcards
    bits, group = int(w.bits), int(w.group)
    method = QUANTISERS.get(w.method)  # fails fast, naming the allowed methods
    pruned = snakemake.input.get("pruned")
    ids = load_tensors(snakemake.input.calibration)["ids"] if method.needs_calibration else None
    recipe = {"method": w.method, "bits": bits, "group_size": group, "calibration": snakemake.params.calibration}
    with provenance.measure(device) as run:
        if pruned:
            from compbench.prune import masked

            model, _ = variants.load(pruned, device=device)
            keep = masked.load_masks(pruned)
            recipe["on"] = w.pruned
        else:
            model, keep = models.load(snakemake.input.model, device=device), None
        quantised, info = quantise_model(model, w.method, bits, group, ids, device, keep)
    recipe.update(info)
    log.info("%s: %d linears quantised, %s", w, len(quantised), info)
    quant_variant.save(snakemake.output.variant, snakemake.input.model, quantised, recipe, pruned_dir=pruned)
    rec = provenance.stamp(recipe, None, run)
    row = {
        "model": w.model,
        "variant": snakemake.output.variant.rstrip("/").split("/")[-1],
        "method": w.method,
        "bits": bits,
        "group_size": group,
        "on": recipe.get("on", ""),
        **info,
        **rec,
    }
    write_table(snakemake.output.record, pd.DataFrame([row]))

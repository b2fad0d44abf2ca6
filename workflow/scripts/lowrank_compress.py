"""Rule lowrank_compress: rank allocation (uniform / WeLore) from singular values, then factor pairs."""

import math
from pathlib import Path

import torch

from compbench import device as dev
from compbench import models, provenance, runlog
from compbench.artifacts import load_tensors, read_table, write_table
from compbench.lowrank import compress as lowrank

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w = snakemake.wildcards
    ratio, spec = float(w.ratio), snakemake.params.spec
    lowrank.ALLOCATIONS.get(w.allocation)  # fails fast, naming the allowed allocations
    matrices = read_table(snakemake.input.matrices)
    # the spectra stage stores λ = σ² (ascending, exact zeros dropped): σ = √λ
    sv = {k: v.to(torch.float64).clamp_min(0).sqrt().flip(0) for k, v in load_tensors(snakemake.input.eigenvalues).items()}
    hyper = {"min_ratio": snakemake.params.min_ratio} if w.allocation == "welore" else {}
    with provenance.measure(device) as run:
        alloc, info = lowrank.allocate(w.allocation, matrices, sv, ratio, **hyper)
        model = models.load(snakemake.input.model, device=device, dtype=getattr(torch, spec.get("dtype", "float32")))
        ranks = {r.module: int(r.kept_rank) for r in alloc.itertuples() if r.lrc}
        dense_w = {m: model.get_submodule(m).weight.detach().clone() for m in ranks}
        lowrank.compress(model, ranks)
        err = {}
        for m, W in dense_w.items():
            mod = model.get_submodule(m)
            approx = mod.U.weight @ mod.V.weight
            err[m] = float(torch.linalg.matrix_norm(W - approx) / torch.linalg.matrix_norm(W))
    alloc["rel_error"] = alloc["module"].map(err).fillna(0.0)
    log.info("%s %s: %s", w.allocation, ratio, info)
    recipe = {"allocation": w.allocation, "target": ratio, **{k: v for k, v in info.items() if k not in ("method", "target")}}
    lowrank.save(snakemake.output.variant, snakemake.input.model, model, recipe)
    factors_bytes = (Path(snakemake.output.variant) / "factors.safetensors").stat().st_size
    elem = next(model.parameters()).element_size()
    rec = provenance.stamp({"allocation": w.allocation, "ratio": ratio, **hyper}, None, run)
    for k, v in info.items():
        alloc[k] = v if not (isinstance(v, float) and math.isnan(v)) else None
    alloc.insert(0, "allocation", w.allocation)
    alloc.insert(0, "variant", Path(snakemake.output.variant).name)
    alloc.insert(0, "model", w.model)
    alloc["factors_bytes"] = factors_bytes
    alloc["replaced_dense_bytes"] = int(alloc.loc[alloc.lrc, "params_before"].sum()) * elem
    write_table(snakemake.output.record, alloc.assign(**rec))

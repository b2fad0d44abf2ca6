"""Rule owl_outliers: OWL's layerwise outlier ratio (LOD) of every block of the
dense model, from Wanda scores |W|·‖X‖ on the calibration set (sequential pass,
no pruning)."""

import pandas as pd
import torch

from compbench import calibration, models, runlog
from compbench import device as dev
from compbench.artifacts import load_tensors, write_table
from compbench.prune.wanda import scores
from compbench.spectra import allocate

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    model = models.load(snakemake.input.model, device=device, dtype=getattr(torch, snakemake.params.dtype))
    ids = load_tensors(snakemake.input.calibration)["ids"]
    rows = []

    def on_block(b, linears, stats):
        lod = allocate.owl_lod([scores(m.weight.data.float(), stats[n]) for n, m in linears.items()], snakemake.params.M)
        rows.append({"block": b, "lod": lod, "params": sum(m.weight.numel() for m in linears.values())})
        log.info("block %d: LOD %.3f %%", b, lod)

    calibration.sequential(model, ids, device, want_hessian=False, on_block=on_block)
    write_table(snakemake.output[0], pd.DataFrame(rows))

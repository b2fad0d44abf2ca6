"""Rule compose_memit_stats: MEMIT's key statistics E[k kᵀ], once per model, for
every MEMIT entry's layers (safetensors in the output directory, read by the runs)."""

from pathlib import Path

from compbench import device as dev
from compbench import models, runlog
from compbench.artifacts import load_tensors
from compbench.compose.interventions.edit_ft import band
from compbench.compose.interventions.edit_memit import cached_covariance
from compbench.compose.interventions.methods import Context, StudyData

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    out = Path(snakemake.output[0])
    out.mkdir(parents=True, exist_ok=True)
    model = models.load(snakemake.input.model, device=device)
    calib = load_tensors(snakemake.input.calibration)["ids"]
    empty = StudyData([], [], [], [], [], [])
    ctx = Context(None, device, empty, calib, cache_dir=out, log=log.info)
    for iid, spec in snakemake.params.memit.items():
        layers = band(model, spec.get("layers"))
        cached_covariance(model, ctx, layers, spec.get("n_stats", 32))
        log.info("%s: key statistics of layers %s in %s", iid, layers, out)

"""Rule spectra: eigenvalues and power-law alpha of every decoder linear of a model."""

import torch

from compbench import device as dev
from compbench import models, provenance, runlog
from compbench.artifacts import save_tensors, write_table
from compbench.spectra import esd as spectra

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    spec, cfg = snakemake.params.spec, snakemake.params.spectra
    model_name = snakemake.wildcards.model
    with provenance.measure(device) as run:
        # the model stays on the CPU; analyse() moves the weights to `device` shape by shape
        model = models.load(
            snakemake.input.model,
            device="cpu",
            dtype=getattr(torch, spec.get("dtype", "float32")),
            trust_remote_code=spec.get("trust_remote_code", False),
        )
        matrices, eigs = spectra.analyse(model, rules=cfg["rules"], device=device)
        blocks = spectra.block_table(matrices, cfg["rules"])
    rec = provenance.stamp({"model": spec, "spectra": cfg}, None, run)
    log.info("%s: %d matrices in %d blocks, %.2f s on %s", model_name, len(matrices), len(blocks), rec["wall_s"], device)
    log.info("per-block mean alpha:\n%s", blocks.to_string(index=False))
    meta = {"model": model_name, "default_rule": cfg["default_rule"], "rules": ",".join(cfg["rules"])}
    for table, path in ((matrices, snakemake.output.matrices), (blocks, snakemake.output.blocks)):
        table.insert(0, "model", model_name)
        table["default_rule"] = cfg["default_rule"]
        write_table(path, table.assign(**rec))
    save_tensors(snakemake.output.eigenvalues, eigs, metadata=meta)

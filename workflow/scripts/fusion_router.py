"""Rule fusion_router: upscale the MLPs to MoE modules and train the preference router (one seed)."""

import pandas as pd
from transformers import AutoTokenizer

from compbench import device as dev
from compbench import models, provenance, runlog
from compbench.artifacts import load_tensors, read_json, save_tensors, write_table
from compbench.fusion import moe as fusion

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    cfg, seed = snakemake.params.cfg, snakemake.params.seed
    tok = AutoTokenizer.from_pretrained(snakemake.input.model)
    tasks = [fusion.TaskData(tok, read_json(p), "train", device) for p in snakemake.input.tasks]
    taus = [load_tensors(p) for p in snakemake.input.taus]
    model = models.load(snakemake.input.model, device=device)
    fused = fusion.FusedModel(model, taus, cfg["hidden"], cfg["init_lambda"], snakemake.params.other_lambda, seed)
    n_params = sum(p.numel() for p in fused.router.parameters())
    with provenance.measure(device) as run:
        hist, wall = fusion.train_router(fused, tasks, cfg["steps"], cfg["batch_size"], cfg["lr"], cfg["dirichlet_alpha"], seed, log)
    log.info("router: %d parameters, %.1f s training", n_params, wall)
    save_tensors(
        snakemake.output.router,
        {k: v.detach().cpu() for k, v in fused.router.state_dict().items()},
        metadata={"n_tasks": len(taus), "n_layers": len(fused.mlps), "hidden": cfg["hidden"]},
    )
    write_table(snakemake.output.history, pd.DataFrame(hist))
    stamp = provenance.stamp({"router": cfg, "other_lambda": snakemake.params.other_lambda}, seed, run)
    rows = [
        {"model": snakemake.wildcards.model, "metric": "router_params", "value": n_params},
        {"model": snakemake.wildcards.model, "metric": "router_train_s", "value": wall},
        {"model": snakemake.wildcards.model, "metric": "moe_modules", "value": len(fused.mlps)},
    ]
    write_table(snakemake.output.record, pd.DataFrame(rows).assign(**stamp))

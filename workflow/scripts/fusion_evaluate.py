"""Rule fusion_evaluate: every method's models of one seed (MoE fusion merged at each preference, task
arithmetic grid, interpolation, single-task models) evaluated on every task, with every item's correctness."""

import pandas as pd
from transformers import AutoTokenizer

from compbench import device as dev
from compbench import models, provenance, runlog
from compbench.artifacts import load_tensors, read_json, write_table
from compbench.fusion import moe as fusion

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    cfg = snakemake.params.cfg
    tok = AutoTokenizer.from_pretrained(snakemake.input.model)
    tasks = [fusion.TaskData(tok, read_json(p), "test", device) for p in snakemake.input.tasks]
    taus = [load_tensors(p) for p in snakemake.input.taus]
    model = models.load(snakemake.input.model, device=device)
    meta = load_tensors(snakemake.input.router)
    router = fusion.Router(len(taus), len(fusion.mlp_modules(model)), cfg["router"]["hidden"]).to(device)
    router.load_state_dict(meta)
    with provenance.measure(device) as run:
        rows = fusion.sweep(model, taus, router, tasks, cfg, log)
    stamp = provenance.stamp({"fusion": cfg}, snakemake.params.seed, run)
    write_table(snakemake.output[0], pd.DataFrame(rows).assign(model=snakemake.wildcards.model, **stamp))

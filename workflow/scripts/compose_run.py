"""Rule compose_run: the unchanged model, one intervention, or a pair in both
orders, each on a fresh copy of the model; every metric of the study, and each fact's
edit success (the items table)."""

import copy
import json
from pathlib import Path

import pandas as pd
import torch

from compbench import device as dev
from compbench import models, perplexity, provenance, runlog, tokenizer
from compbench.artifacts import load_tensors, write_table
from compbench.compose import metrics as em
from compbench.compose import pipeline as compose

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w, p = snakemake.wildcards, snakemake.params
    ev = p.eval
    steps = compose.sequence_steps(w.run, p.interventions)  # fails fast on an unknown id
    i = snakemake.input
    base, ctx = compose.load_study(i.model, i.data, i.calibration, i.get("memit_stats"), device, p.seed, log.info)
    tok = ctx.tokenizer
    text = perplexity.DATASETS.get(ev["perplexity"])({"sources": p.sources}, p.corpus_dir)
    ppl_ids = tokenizer.encode_stream(tok, text)
    seq_len = models.seq_len(base, ev.get("seq_len"), p.spec.get("max_seq_len"))
    base_predictions = em.predictions(base, tok, ctx.data.locality, device)
    orders = [steps] if len(steps) < 2 else [steps, steps[::-1]]
    # each order's first step as rule compose_first applied it to the unchanged model
    firsts = {Path(f).name.removesuffix(".safetensors"): f for f in snakemake.input.get("first", [])}
    rows, items = [], []  # items: each fact's edit success, for the verdicts' bootstrap over facts
    for order in orders:
        torch.manual_seed(p.seed)
        model = copy.deepcopy(base)
        done, first_wall = [], 0.0
        if order:
            changed, meta = load_tensors(firsts[order[0].id], metadata=True)
            compose.restore(model, changed)
            done, first_wall = [json.loads(meta["info"])], float(meta["wall_s"])
        with provenance.measure(device) as run:
            infos = compose.apply(model, ctx, order, done)
        per_item = {}
        metrics = compose.evaluate(model, ctx, base_predictions, ppl_ids, seq_len, ev["ppl_windows"], ev["batch_size"], per_item)
        metrics["avg_bits"] = compose.avg_bits(infos)
        name = "→".join(s.id for s in order) or "none"
        log.info("%s: %s", name, {k: round(v, 4) for k, v in metrics.items()})
        rec = provenance.stamp({"order": [s.id for s in order], "interventions": {s.id: s.params for s in order}, "eval": ev}, p.seed, run)
        rec["wall_s"] = round(rec["wall_s"] + first_wall, 3)  # the order's time, its cached first step included
        ids = [s.id for s in order] + ["", ""]
        cats = [s.category for s in order] + ["", ""]
        for m, v in metrics.items():
            rows.append(
                {
                    "model": w.model,
                    "run": w.run,
                    "order": name,
                    "first": ids[0],
                    "second": ids[1],
                    "first_category": cats[0],
                    "second_category": cats[1],
                    "metric": m,
                    "value": float(v),
                    "infos": json.dumps(infos, default=str),
                    **rec,
                }
            )
        items += [
            {"model": w.model, "run": w.run, "order": name, "metric": m, "item": i, "value": v}
            for m, vs in per_item.items()
            for i, v in enumerate(vs)
        ]
        del model
    write_table(snakemake.output.table, pd.DataFrame(rows))
    write_table(snakemake.output.per_item, pd.DataFrame(items, columns=["model", "run", "order", "metric", "item", "value"]))

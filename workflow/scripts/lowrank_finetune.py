"""Rule lowrank_finetune: fine-tune a low-rank variant (full / LRC-only / LoRA) on the training data."""

from pathlib import Path

import pandas as pd
import torch

from compbench import device as dev
from compbench import models, provenance, runlog, tokenizer, variants
from compbench.artifacts import read_json, write_table
from compbench.lowrank import compress as lowrank
from compbench.lowrank import finetune as lrc_finetune

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w, ft, spec = snakemake.wildcards, snakemake.params.finetune, snakemake.params.spec
    lrc_finetune.MODES.get(w.mode)  # fails fast, naming the allowed modes
    dtype = getattr(torch, spec.get("dtype", "float32"))
    with provenance.measure(device) as run:
        model, tok_dir = variants.load(snakemake.input.variant, device=device, dtype=dtype)
        tok = tokenizer.load(tok_dir)
        data = lrc_finetune.TRAIN_DATA.get(ft["data"])
        kw = dict(corpus_dir=snakemake.params.corpus_dir, sources=snakemake.params.sources, n_documents=ft.get("n_documents"))
        train_ids = tokenizer.encode_stream(tok, data("train", **kw))
        val_ids = tokenizer.encode_stream(tok, data("validation", **kw))
        seq_len = models.seq_len(model, ft.get("seq_len"), spec.get("max_seq_len"))
        fts = lrc_finetune.FTSpec(
            steps=ft["steps"],
            batch_size=ft["batch_size"],
            lr=ft["lr"][w.mode],
            warmup=ft["warmup"],
            weight_decay=ft["weight_decay"],
            eval_every=ft["eval_every"],
            eval_windows=ft["eval_windows"],
            seed=ft["seed"],
            **({"lora_r": ft["lora"]["r"], "lora_alpha": ft["lora"]["alpha"]} if "lora" in ft else {}),  # LoRA's params only for LoRA
        )
        log.info("%s: %d train tokens, %d validation tokens, seq_len %d, %s", w, train_ids.numel(), val_ids.numel(), seq_len, fts)
        model, curve, summary = lrc_finetune.finetune(model, w.mode, train_ids, val_ids, seq_len, fts, device)
    log.info("summary: %s", summary)
    base = models.load(snakemake.input.model, device="cpu", dtype=dtype)
    recipe = {k: v for k, v in read_json(Path(snakemake.input.variant) / "variant.json").items() if k not in ("kind", "base", "ranks")}
    recipe.update(finetune=w.mode, finetune_spec=fts.__dict__)
    lowrank.save(snakemake.output.variant, snakemake.input.model, model.to("cpu"), recipe, base_model=base)
    rec = provenance.stamp({"finetune": ft, "mode": w.mode}, ft["seed"], run)
    df = pd.DataFrame(curve)
    df.insert(0, "mode", w.mode)
    df.insert(0, "ratio", float(w.ratio))
    df.insert(0, "allocation", w.allocation)
    df.insert(0, "variant", Path(snakemake.output.variant).name)
    df.insert(0, "model", w.model)
    for k, v in summary.items():
        if k != "mode":
            df[k if k not in df.columns else f"total_{k}"] = v  # per-step `tokens` stays; the run's total is total_tokens
    write_table(snakemake.output.curve, df.assign(**rec))

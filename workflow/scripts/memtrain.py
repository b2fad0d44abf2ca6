"""Rules memtrain_finetune / memtrain_pretrain: train one model with one training
variant (AdamW / LoRA / GaLore / Q-GaLore / ablations), measure it (its test perplexity's
per-window NLL sums in windows.csv, for the verdicts' bootstrap), save it."""

import json

import pandas as pd
import torch

from compbench import device as dev
from compbench import models, perplexity, pretrain, provenance, runlog, tokenizer
from compbench.artifacts import write_table
from compbench.memtrain import data, recipe
from compbench.memtrain import variant as trained_variant
from compbench.memtrain.methods import Context

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w = snakemake.wildcards
    mt, regime = snakemake.params.memtrain, snakemake.params.regime
    rg = mt[regime]
    name = w.tvariant
    torch.manual_seed(rg["seed"])
    if regime == "finetune":
        model = models.load(snakemake.input.model, device="cpu")
        tok = tokenizer.load(snakemake.input.model)
        base_state = {k: v.clone() for k, v in model.state_dict().items()}
    else:
        from transformers import AutoTokenizer, LlamaForCausalLM

        tok = tokenizer.load(snakemake.input.tokenizer) if rg["tokenizer"] == "tiny" else AutoTokenizer.from_pretrained(rg["tokenizer"])
        size = rg["sizes"][w.base]
        model = LlamaForCausalLM(models.tiny_config(size, vocab_size=len(tok), tokenizer=tok))
    texts = data.DATA.get(rg["data"])(regime, {"sources": snakemake.params.sources, **rg}, snakemake.params.corpus_dir)
    ids = {k: tokenizer.encode_stream(tok, v) for k, v in texts.items()}
    log.info("%s %s %s: tokens %s", regime, w.base, name, {k: v.numel() for k, v in ids.items()})
    seq_len = int(rg["seq_len"])
    lr = recipe.lr_for(name, mt["lr"])
    steps = rg["sizes"][w.base].get("steps", rg["steps"]) if regime == "pretrain" else rg["steps"]
    spec = pretrain.TrainSpec(
        steps=steps,
        batch_size=rg["batch_size"],
        lr=lr,
        warmup=rg["warmup"],
        weight_decay=mt["weight_decay"],
        eval_every=rg["eval_every"],
        eval_windows=rg["eval_windows"],
        seed=rg["seed"],
    )
    ctx = Context(
        lr=lr,
        betas=tuple(mt["betas"]),
        eps=mt["eps"],
        weight_decay=mt["weight_decay"],
        train_embeddings=rg["train_embeddings"],
        seed=rg["seed"],
    )
    hyper = recipe.hyper_for(name, mt["hyper"])
    with provenance.measure(device) as run:
        plain, curve, summary, refresh = recipe.run(model, name, hyper, ctx, ids["train"], ids["monitor"], seq_len, spec, device)
        ev = snakemake.params.evaluation
        cap = (snakemake.params.spec or {}).get("max_seq_len")
        ppl = perplexity.evaluate(
            plain, ids["test"], models.seq_len(plain, cap), batch_size=ev["batch_size"], device=device, max_windows=ev.get("max_windows")
        )
    summary["test_perplexity"] = ppl["perplexity"]
    log.info("%s: %s", name, json.dumps(summary, default=str))
    recipe_rec = {"regime": regime, "base_model": w.base, "variant": name, "lr": lr, "hyper": hyper, "data": rg["data"]}
    stamp = provenance.stamp({"memtrain": mt, "regime": regime}, rg["seed"], run)
    keys = {"regime": regime, "model": w.base, "variant": name}
    write_table(snakemake.output.curve, pd.DataFrame(curve).assign(**keys))
    windows = perplexity.window_rows(w.base, name, "test", {"nll": ppl["window_nll"], "tokens": ppl["window_tokens"]})
    write_table(snakemake.output.windows, pd.DataFrame(windows, columns=perplexity.WINDOW_COLUMNS))
    write_table(snakemake.output.refresh, pd.DataFrame(refresh, columns=["layer", "step", "gap", "similarity"]).assign(**keys))
    rows = [{**keys, "metric": k, "value": float(v)} for k, v in summary.items() if v is not None]
    write_table(snakemake.output.summary, pd.DataFrame(rows).assign(**{k: v for k, v in stamp.items() if k not in keys}))
    if regime == "finetune":
        n = trained_variant.save(snakemake.output.variant, snakemake.input.model, plain.to("cpu"), base_state, recipe_rec)
        log.info("saved %d changed tensors", n)

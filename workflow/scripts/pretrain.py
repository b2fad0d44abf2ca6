"""Rule pretrain_tiny: pretrain the tiny LLaMA and save it with its tokenizer."""

import pandas as pd
import torch
from transformers import LlamaForCausalLM

from compbench import device as dev
from compbench import models, pretrain, provenance, runlog, tokenizer
from compbench.artifacts import atomic_path, write_table

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    p, tm = snakemake.params.pretrain, snakemake.params.tiny_model
    tok = tokenizer.load(snakemake.input.tokenizer)
    torch.manual_seed(p["seed"])
    cfg = models.tiny_config(tm, vocab_size=len(tok), tokenizer=tok)
    model = LlamaForCausalLM(cfg)
    n_params = sum(t.numel() for t in model.parameters())
    log.info("tiny LLaMA: %d parameters, config %s", n_params, tm)

    def stream(paths):
        return torch.cat([tokenizer.encode_stream(tok, open(f).read()) for f in paths])

    train_ids, val_ids = stream(snakemake.input.train), stream(snakemake.input.validation)
    log.info("train tokens %d, validation tokens %d", train_ids.numel(), val_ids.numel())
    spec = pretrain.TrainSpec(**{k: p[k] for k in pretrain.TrainSpec.__dataclass_fields__})
    with provenance.measure(device) as run:
        curve = pretrain.train(model, train_ids, val_ids, tm["seq_len"], spec, device)
    df = pd.DataFrame(curve)
    stamp = provenance.stamp({"tiny_model": tm, "pretrain": p}, p["seed"], run)
    df["parameters"] = n_params
    df["train_tokens_available"] = train_ids.numel()
    for k, v in stamp.items():
        df[k] = v
    with atomic_path(snakemake.output.model) as tmp:
        model.to("cpu").save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
    write_table(snakemake.output.curve, df)

"""Rule perplexity: one tidy row per (model, variant, dataset, metric)."""

import pandas as pd
import torch

from compbench import device as dev
from compbench import perplexity, provenance, runlog, tokenizer, variants
from compbench.artifacts import write_table

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w = snakemake.wildcards
    spec, ev = snakemake.params.spec, snakemake.params.evaluation
    dtype = getattr(torch, spec.get("dtype", "float32"))
    with provenance.measure(device) as run:
        model, tok_dir = variants.load(snakemake.input.variant, device=device, dtype=dtype)
        tok = tokenizer.load(tok_dir)
        text = perplexity.DATASETS.get(w.dataset)(
            {"sources": snakemake.params.sources, "n_documents": ev.get("c4_documents")}, snakemake.params.corpus_dir
        )
        ids = tokenizer.encode_stream(tok, text)
        seq_len = model.config.max_position_embeddings
        if spec.get("max_seq_len"):
            seq_len = min(seq_len, spec["max_seq_len"])
        res = perplexity.evaluate(model, ids, seq_len, ev["batch_size"], device, ev.get("max_windows"))
    rec = provenance.stamp({"model": spec, "evaluation": ev}, None, run)
    rec["tokens_per_s"] = res["tokens"] / max(rec["wall_s"], 1e-9)
    log.info("%s/%s on %s: %s", w.model, w.variant, w.dataset, res)
    rows = [
        {"model": w.model, "variant": w.variant, "dataset": w.dataset, "metric": m, "value": res[m], **rec} for m in ("perplexity", "nll")
    ]
    extra = {k: res[k] for k in ("windows", "tokens", "seq_len")}
    write_table(snakemake.output[0], pd.DataFrame([{**r, **extra} for r in rows]))

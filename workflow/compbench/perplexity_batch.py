"""Rule perplexity: one variant's evaluation, a batch of variants per job, and the
result cache's key (:mod:`compbench.resultcache`).

Besides the tidy rows (the perplexity table), a batch writes each variant's windows:
one row per (variant, window) with the window's NLL sum and token count
(:data:`compbench.perplexity.WINDOW_COLUMNS`, ``windows-<batch>-<dataset>.csv``), from which the verdicts
bootstrap a paired interval over windows (:func:`compbench.verdicts.perplexity_interval`).
A cached variant restores its windows from the cache entry (its ``extra``).

Apart from :mod:`compbench.perplexity` (the protocol, which the composability and
memory-efficient-training jobs use too), so that an edit here reruns the perplexity
jobs only.
"""

from __future__ import annotations

from pathlib import Path

import torch

from compbench import resultcache
from compbench.perplexity import DATASETS, evaluate, window_rows

METRICS = ("perplexity", "nll")
COUNTS = ("windows", "tokens", "seq_len")


def dataset_text(dataset: str, sources, corpus_dir, c4_documents=None) -> str:
    return DATASETS.get(dataset)({"sources": sources, "n_documents": c4_documents}, corpus_dir)


def variant_rows(
    path, dataset: str, spec: dict, evaluation: dict, sources, corpus_dir, device, ids_cache: dict | None = None
) -> tuple[list[dict], dict]:
    """One variant's evaluation, as the per-variant job always did it: load the variant,
    tokenise the data set with its tokenizer, :func:`evaluate`; the tidy rows (one per
    metric, without ``model`` / ``variant``) with provenance, and its windows
    (``{"nll": [...], "tokens": [...]}``, one entry per window). ``ids_cache`` (tokenizer
    directory, data set) -> token ids lets a batch tokenise once; the numbers are the same."""
    from compbench import models, provenance, tokenizer, variants

    dtype = getattr(torch, models.eval_dtype(spec))
    device = torch.device(device)
    with provenance.measure(device) as run:
        model, tok_dir = variants.load(path, device=device, dtype=dtype)
        key = (str(Path(tok_dir).resolve()), dataset)
        ids = ids_cache.get(key) if ids_cache is not None else None
        if ids is None:
            tok = tokenizer.load(tok_dir)
            ids = tokenizer.encode_stream(tok, dataset_text(dataset, sources, corpus_dir, evaluation.get("c4_documents")))
            if ids_cache is not None:
                ids_cache[key] = ids
        seq_len = model.config.max_position_embeddings
        if spec.get("max_seq_len"):
            seq_len = min(seq_len, spec["max_seq_len"])
        res = evaluate(model, ids, seq_len, evaluation["batch_size"], device, evaluation.get("max_windows"))
        del model
    rec = provenance.stamp({"model": spec, "evaluation": evaluation}, None, run)
    rec["tokens_per_s"] = res["tokens"] / max(rec["wall_s"], 1e-9)
    extra = {k: int(res[k]) for k in COUNTS}
    windows = {"nll": [float(x) for x in res["window_nll"]], "tokens": [int(x) for x in res["window_tokens"]]}
    return [{"dataset": dataset, "metric": m, "value": float(res[m]), **rec, **extra} for m in METRICS], windows


def cache_parts(path, dataset: str, spec: dict, evaluation: dict, sources, text_files, code_files, device) -> dict:
    """What a variant's perplexity depends on (the cache key, :mod:`compbench.resultcache`):
    its content and its base model's (provenance records), the data set and its text files,
    the settings, the device type, the code (files' bytes) and the library versions."""
    from compbench import provenance, resultcache, variants

    m = variants.manifest(path)
    versions = provenance.versions()
    return {
        "what": "perplexity",
        "variant": resultcache.artifact_id(path),
        "base": resultcache.artifact_id(m["base"]) if "base" in m else None,
        "dataset": dataset,
        "text": {Path(f).name + f"@{i}": resultcache.artifact_id(f) for i, f in enumerate(text_files)},
        "settings": {"spec": spec, "evaluation": evaluation, "sources": list(sources)},
        "device": torch.device(device).type,
        "code": resultcache.files_id(code_files, Path(__file__).resolve().parents[1]),
        "versions": {k: v for k, v in versions.items() if k != "snakemake"},
    }


def evaluate_batch(
    model_name: str,
    members: dict,
    dataset: str,
    spec: dict,
    evaluation: dict,
    sources,
    corpus_dir,
    device,
    cache=None,
    text_files=(),
    code_files=(),
    log=None,
) -> tuple[list[dict], list[dict]]:
    """Rule ``perplexity``: every variant of ``members`` (name -> directory) in turn; the
    rows of all in order and their windows (:func:`window_rows`). With a
    :class:`compbench.resultcache.ResultCache`, a variant whose key is stored (with its
    windows) is read back instead of evaluated (``log`` says which)."""
    rows, windows, ids_cache = [], [], {}
    for name, path in members.items():
        got, how, key = resultcache.cached(
            cache,
            lambda: cache_parts(path, dataset, spec, evaluation, sources, text_files, code_files, device),
            lambda: variant_rows(path, dataset, spec, evaluation, sources, corpus_dir, device, ids_cache),
            dict,  # the windows
        )
        got_rows, got_windows = got
        if log is not None:
            ppl = next(r["value"] for r in got_rows if r["metric"] == "perplexity")
            log.info("%s/%s on %s: %s, perplexity %.6g%s", model_name, name, dataset, how, ppl, f" (key {key[:12]})" if key else "")
        rows += [{"model": model_name, "variant": name, **r} for r in got_rows]
        windows += window_rows(model_name, name, dataset, got_windows)
    return rows, windows

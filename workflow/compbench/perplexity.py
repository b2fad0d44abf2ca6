"""Perplexity the way the pruning papers compute it.

SparseGPT / Wanda / AlphaPruning protocol on WikiText-2 test: join the texts
with ``"\\n\\n"``, tokenise once, cut into non-overlapping windows of the
model's sequence length (the remainder is dropped), and report
``exp(mean NLL over every predicted token)``. The reference code multiplies
each window's mean loss by ``seq_len`` and divides by ``n_windows * seq_len``,
which is the same number because every window predicts ``seq_len - 1`` tokens.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm import tqdm

from compbench.registry import Registry

# name -> function(spec, corpus_dir) returning the raw evaluation text
DATASETS: Registry = Registry("perplexity dataset")


@DATASETS.register("wikitext2")
def wikitext2(spec: dict, corpus_dir=None) -> str:
    from datasets import load_dataset

    try:
        ds = load_dataset("wikitext", "wikitext-2-raw-v1", split="test")
    except Exception as e:  # network / offline errors come in many types
        raise RuntimeError(f"could not load data set 'wikitext' (wikitext-2-raw-v1, test) from the Hugging Face hub: {e}") from e
    return "\n\n".join(ds["text"])


@DATASETS.register("c4")
def c4(spec: dict, corpus_dir=None) -> str:
    """C4 validation shard 0, first ``n_documents`` documents (Wanda evaluates 256 × seqlen of it)."""
    from datasets import load_dataset

    files = {"validation": "en/c4-validation.00000-of-00008.json.gz"}
    try:
        ds = load_dataset("allenai/c4", data_files=files, split="validation")
    except Exception as e:
        raise RuntimeError(f"could not load data set 'allenai/c4' ({files['validation']}) from the Hugging Face hub: {e}") from e
    n = int(spec.get("n_documents", 1100))
    return " ".join(ds[:n]["text"])


@DATASETS.register("tiny")
def tiny(spec: dict, corpus_dir=None) -> str:
    """The embedded corpus's test split, every source joined like WikiText-2."""
    from compbench.corpus import documents, read_split

    if corpus_dir is None:
        raise ValueError("perplexity dataset 'tiny' needs the corpus directory")
    docs = []
    for source in spec["sources"]:
        docs += documents(read_split(corpus_dir, source, "test"))
    return "\n\n".join(docs)


@DATASETS.register("natural")
def natural(spec: dict, corpus_dir=None) -> str:
    """The corpus's test split of its natural-text sources only (wiki, lee): without the
    generated task and knowledge text, which a pretrained model never saw (``tiny`` keeps them)."""
    from compbench.corpus import RELATIVE

    natural_sources = [s for s in spec["sources"] if s not in RELATIVE]
    if not natural_sources:
        raise ValueError(f"perplexity dataset 'natural' needs a natural-text corpus source; corpus.sources={spec['sources']}")
    return tiny({**spec, "sources": natural_sources}, corpus_dir)


@torch.no_grad()
def evaluate(
    model, ids: torch.Tensor, seq_len: int, batch_size: int = 8, device: torch.device | str = "cpu", max_windows: int | None = None
) -> dict:
    """Mean next-token NLL over non-overlapping windows of ``ids``; returns ppl, nll, counts."""
    n = ids.numel() // seq_len
    if max_windows:
        n = min(n, max_windows)
    if n == 0:
        raise ValueError(f"evaluation text has {ids.numel()} tokens, fewer than one window of {seq_len}")
    w = ids[: n * seq_len].view(n, seq_len)
    total, count = 0.0, 0
    for i in tqdm(range(0, n, batch_size), desc="perplexity", mininterval=5):
        batch = w[i : i + batch_size].to(device)
        logits = model(batch).logits[:, :-1].float()
        total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1), reduction="sum"))
        count += batch[:, 1:].numel()
    nll = total / count
    return {"perplexity": math.exp(nll), "nll": nll, "windows": n, "tokens": count, "seq_len": seq_len}


# ---------------------------------------------------------------- rule perplexity: one variant, a batch
METRICS = ("perplexity", "nll")
COUNTS = ("windows", "tokens", "seq_len")


def dataset_text(dataset: str, sources, corpus_dir, c4_documents=None) -> str:
    return DATASETS.get(dataset)({"sources": sources, "n_documents": c4_documents}, corpus_dir)


def variant_rows(
    path, dataset: str, spec: dict, evaluation: dict, sources, corpus_dir, device, ids_cache: dict | None = None
) -> list[dict]:
    """One variant's evaluation, as the per-variant job always did it: load the variant,
    tokenise the data set with its tokenizer, :func:`evaluate`; the tidy rows (one per
    metric, without ``model`` / ``variant``) with provenance. ``ids_cache`` (tokenizer
    directory, data set) -> token ids lets a batch tokenise once; the numbers are the same."""
    from compbench import provenance, tokenizer, variants

    dtype = getattr(torch, spec.get("dtype", "float32"))
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
    return [{"dataset": dataset, "metric": m, "value": float(res[m]), **rec, **extra} for m in METRICS]


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
) -> list[dict]:
    """Rule ``perplexity``: every variant of ``members`` (name -> directory) in turn, the
    rows of all in order. With a :class:`compbench.resultcache.ResultCache`, a variant
    whose key is stored is read back instead of evaluated (``log`` says which)."""
    rows, ids_cache = [], {}
    for name, path in members.items():
        parts = key = None
        got = None
        if cache is not None:
            parts = cache_parts(path, dataset, spec, evaluation, sources, text_files, code_files, device)
            key = cache.key(parts)
            got = cache.get(key)
        if got is None:
            got = variant_rows(path, dataset, spec, evaluation, sources, corpus_dir, device, ids_cache)
            if cache is not None:
                cache.put(key, parts, got)
            how = "evaluated"
        else:
            how = "from cache"
        if log is not None:
            ppl = next(r["value"] for r in got if r["metric"] == "perplexity")
            log.info("%s/%s on %s: %s, perplexity %.6g%s", model_name, name, dataset, how, ppl, f" (key {key[:12]})" if key else "")
        rows += [{"model": model_name, "variant": name, **r} for r in got]
    return rows

"""Perplexity the way the pruning papers compute it.

SparseGPT / Wanda / AlphaPruning protocol on WikiText-2 test: join the texts
with ``"\\n\\n"``, tokenise once, cut into non-overlapping windows of the
model's sequence length (the remainder is dropped), and report
``exp(mean NLL over every predicted token)``. The reference code multiplies
each window's mean loss by ``seq_len`` and divides by ``n_windows * seq_len``,
which is the same number because every window predicts ``seq_len - 1`` tokens.

:func:`evaluate` also returns each window's NLL sum and token count
(``window_nll``, ``window_tokens``): the total is their exactly rounded sum
(``math.fsum``), so ``exp(fsum(window_nll) / sum(window_tokens))`` reproduces the
reported perplexity bit for bit, and a bootstrap over windows
(:mod:`compbench.stats`) can resample the evaluation.
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

from compbench.registry import Registry

# name -> function(spec, corpus_dir) returning the raw evaluation text
DATASETS: Registry = Registry("perplexity dataset")
# A windows table: one row per (variant, window) with the window's NLL sum and token count.
WINDOW_COLUMNS = ("model", "variant", "dataset", "window", "nll", "tokens")


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
    """Mean next-token NLL over non-overlapping windows of ``ids``; returns ppl, nll, counts and
    the per-window NLL sums and token counts (``window_nll``, ``window_tokens``)."""
    n = ids.numel() // seq_len
    if max_windows:
        n = min(n, max_windows)
    if n == 0:
        raise ValueError(f"evaluation text has {ids.numel()} tokens, fewer than one window of {seq_len}")
    w = ids[: n * seq_len].view(n, seq_len)
    window_nll = []
    for i in tqdm(range(0, n, batch_size), desc="perplexity", mininterval=5):
        batch = w[i : i + batch_size].to(device)
        logits = model(batch).logits[:, :-1].float()
        tok = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1), reduction="none")
        window_nll += tok.view(batch.size(0), -1).double().sum(1).tolist()
    window_tokens = [seq_len - 1] * n
    count = sum(window_tokens)
    nll = math.fsum(window_nll) / count
    return {
        "perplexity": math.exp(nll),
        "nll": nll,
        "windows": n,
        "tokens": count,
        "seq_len": seq_len,
        "window_nll": window_nll,
        "window_tokens": window_tokens,
    }


def window_rows(model_name: str, variant: str, dataset: str, windows: dict) -> list[dict]:
    """A variant's windows as rows of the windows table (:data:`WINDOW_COLUMNS`): ``windows``
    holds the per-window ``nll`` sums and ``tokens`` counts (:func:`evaluate`'s ``window_nll``,
    ``window_tokens``)."""
    nll, tokens = windows["nll"], windows["tokens"]
    if len(nll) != len(tokens):
        raise ValueError(f"{model_name}/{variant} on {dataset}: {len(nll)} window NLL sums but {len(tokens)} token counts")
    return [
        {"model": model_name, "variant": variant, "dataset": dataset, "window": i, "nll": float(x), "tokens": int(t)}
        for i, (x, t) in enumerate(zip(nll, tokens))
    ]

"""Calibration token sets, and sequential block-by-block statistics.

Token sets (registry :data:`SOURCES`): ``n_samples`` random windows of
``seq_len`` tokens. Real runs follow Wanda/SparseGPT: 128 random 2048-token
windows of C4 ``en`` train shard 0 (seed 0); a document is redrawn until it is
longer than the window. The embedded default draws windows from the tiny
corpus's train split. A token set is saved as safetensors (``ids``, int64,
``[n_samples, seq_len]``) plus a JSON manifest.

Statistics (:func:`sequential`): the inputs of block 0 are captured once; then,
block by block, every linear of the block is hooked to accumulate what the
pruning method needs (input column norms for Wanda, the Hessian
``H = (2/n) Σ X Xᵀ`` for SparseGPT), the block is pruned by a callback, and its
outputs *recomputed with the pruned weights* feed the next block, as the
reference implementations do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from .registry import Registry

SOURCES: Registry[Callable] = Registry("calibration source")
# Downstream sources of the calibration study: name -> examples (compbench.calibration_sets).
EXAMPLES: Registry = Registry("calibration example source")

# The reference implementations cap the window at 2048 whatever the model's
# max_position_embeddings says (users run out of memory beyond that).
MAX_SEQ_LEN = 2048


def windows_from_documents(docs: list[list[int]], n_samples: int, seq_len: int, seed: int) -> torch.Tensor:
    """Wanda's ``get_c4``: draw a random document until it is longer than the
    window, then a random window inside it; ``n_samples`` times."""
    rng = random.Random(seed)
    long_enough = [d for d in docs if len(d) > seq_len]
    if not long_enough:
        raise ValueError(f"no calibration document is longer than seq_len={seq_len} tokens")
    out = torch.empty(n_samples, seq_len, dtype=torch.long)
    for s in range(n_samples):
        while True:
            d = docs[rng.randrange(len(docs))]
            if len(d) > seq_len:
                break
        i = rng.randrange(0, len(d) - seq_len)
        out[s] = torch.tensor(d[i : i + seq_len])
    return out


def windows_from_stream(ids: torch.Tensor, n_samples: int, seq_len: int, seed: int) -> torch.Tensor:
    """Random windows of one concatenated token stream (WikiText-style)."""
    if ids.numel() <= seq_len:
        raise ValueError(f"calibration text has {ids.numel()} tokens, not more than seq_len={seq_len}")
    rng = random.Random(seed)
    starts = [rng.randrange(0, ids.numel() - seq_len) for _ in range(n_samples)]
    return torch.stack([ids[s : s + seq_len] for s in starts])


@SOURCES.register("tiny")
def _tiny(tokenizer, n_samples, seq_len, seed, corpus_dir=None, sources=(), **_):
    """The natural text of the tiny corpus (the C4 stand-in): generated task
    items (corpus source ``tasks``) are left out."""
    from .corpus import RELATIVE, read_split
    from .tokenizer import encode_stream

    if corpus_dir is None:
        raise ValueError("calibration source 'tiny' needs the corpus directory")
    text = "\n\n".join(read_split(corpus_dir, s, "train") for s in sources if s not in RELATIVE)
    return windows_from_stream(encode_stream(tokenizer, text), n_samples, seq_len, seed)


@SOURCES.register("c4")
def _c4(tokenizer, n_samples, seq_len, seed, **_):
    from datasets import load_dataset

    shard = "en/c4-train.00000-of-01024.json.gz"
    try:
        ds = load_dataset("allenai/c4", data_files={"train": shard}, split="train")
    except Exception as e:  # network / offline errors come in many types
        raise RuntimeError(f"could not load calibration data 'allenai/c4' ({shard}) from the Hugging Face hub: {e}") from e
    # Tokenise lazily: only the documents the draw touches.
    rng = random.Random(seed)
    out = torch.empty(n_samples, seq_len, dtype=torch.long)
    for s in range(n_samples):
        while True:
            ids = tokenizer(ds[rng.randint(0, len(ds) - 1)]["text"], return_tensors="pt").input_ids[0]
            if ids.numel() > seq_len:
                break
        i = rng.randint(0, ids.numel() - seq_len - 1)
        out[s] = ids[i : i + seq_len]
    return out


@SOURCES.register("wikitext2")
def _wikitext2(tokenizer, n_samples, seq_len, seed, **_):
    from datasets import load_dataset

    try:
        ds = load_dataset("wikitext", "wikitext-2-raw-v1", split="train")
    except Exception as e:
        raise RuntimeError(f"could not load calibration data 'wikitext' (wikitext-2-raw-v1, train) from the Hugging Face hub: {e}") from e
    ids = tokenizer("\n\n".join(ds["text"]), return_tensors="pt").input_ids[0]
    return windows_from_stream(ids, n_samples, seq_len, seed)


def token_set(source: str, tokenizer, n_samples: int, seq_len: int, seed: int, fmt: str = "raw", **kw) -> torch.Tensor:
    """``n_samples × seq_len`` calibration token ids. Pre-training sources
    (:data:`SOURCES`) give random windows (format ``raw``); downstream sources
    (:data:`EXAMPLES`, see :mod:`compbench.calibration_sets`) are rendered in a
    format (``zero``, ``single``, ``concat``, ``icl<k>``, ``cot``)."""
    if n_samples < 1:
        raise ValueError(f"calibration n_samples={n_samples} must be ≥ 1")
    seq_len = min(seq_len, MAX_SEQ_LEN)
    from . import calibration_sets  # noqa: F401  (registers the study's sources)

    if source in EXAMPLES:
        return calibration_sets.formatted(source, fmt, tokenizer, n_samples, seq_len, seed, **kw)
    if fmt != "raw":
        raise ValueError(f"calibration source {source!r} is pre-training text: format must be 'raw' (random windows), not {fmt!r}")
    if source not in SOURCES:
        allowed = ", ".join(sorted(set(SOURCES.names()) | set(EXAMPLES.names())))
        raise KeyError(f"unknown calibration source {source!r}; allowed: {allowed}")
    return SOURCES.get(source)(tokenizer, n_samples=n_samples, seq_len=seq_len, seed=seed, **kw)


# ---------------------------------------------------------------- statistics


@dataclass
class LayerStats:
    """Running input statistics of one linear layer (inputs are rows of X)."""

    columns: int
    want_hessian: bool
    nsamples: int = 0
    sq_norm: torch.Tensor | None = None  # Σ_samples ‖X_j‖², Wanda's ‖X_j‖₂² (column j = input feature j)
    H: torch.Tensor | None = None  # (2/n) Σ X Xᵀ, SparseGPT's Hessian
    _sum_xxT: torch.Tensor | None = field(default=None, repr=False)

    def add(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).to(torch.float32)
        n = x.shape[0]
        sq = (x * x).sum(0)
        self.sq_norm = sq if self.sq_norm is None else self.sq_norm + sq
        if self.want_hessian:
            xtx = x.T @ x
            self._sum_xxT = xtx if self._sum_xxT is None else self._sum_xxT + xtx
        self.nsamples += n

    def finish(self) -> "LayerStats":
        if self.want_hessian and self._sum_xxT is not None:
            self.H = 2.0 / self.nsamples * self._sum_xxT
            self._sum_xxT = None
        return self

    @property
    def col_norm(self) -> torch.Tensor:
        """‖X_j‖₂ over every calibration token."""
        return torch.sqrt(self.sq_norm)


class _Stop(Exception):
    pass


@torch.no_grad()
def capture_block_inputs(model, blocks: nn.ModuleList, ids: torch.Tensor, device, batch_size: int = 8):
    """Hidden states entering block 0 for every calibration sample, and the
    keyword arguments (rotary embeddings, masks, …) the blocks are called with."""
    inputs, kwargs = [], {}

    def hook(_mod, args, kw):
        inputs.append(args[0] if args else kw["hidden_states"])
        kwargs.update({k: v for k, v in kw.items() if k != "hidden_states"})
        raise _Stop

    h = blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for i in range(0, ids.shape[0], batch_size):
            try:
                model(ids[i : i + batch_size].to(device), use_cache=False)
            except _Stop:
                pass
    finally:
        h.remove()
    return inputs, kwargs


def _block_out(out):
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def sequential(
    model,
    ids: torch.Tensor,
    device,
    want_hessian: bool,
    on_block: Callable[[int, dict[str, nn.Linear], dict[str, LayerStats]], None] | None = None,
    batch_size: int = 8,
) -> dict[str, LayerStats]:
    """Walk the decoder blocks in order: collect the statistics of each block's
    linears on the current inputs, call ``on_block`` (which prunes the block in
    place), recompute the block's outputs with the pruned weights, and feed them
    to the next block. Returns the statistics of every linear (full names)."""
    from .spectra import decoder_blocks, linear_modules

    blocks = decoder_blocks(model)
    names = {}
    for b, name, mod in linear_modules(model):
        names.setdefault(b, {})[name] = mod
    xs, kw = capture_block_inputs(model, blocks, ids, device, batch_size)
    every: dict[str, LayerStats] = {}
    for b, block in enumerate(tqdm(blocks, desc="blocks", mininterval=5)):
        linears = names.get(b, {})
        stats = {n: LayerStats(m.in_features, want_hessian) for n, m in linears.items()}
        hooks = [m.register_forward_hook(lambda mod, inp, out, s=stats[n]: s.add(inp[0])) for n, m in linears.items()]
        try:
            for x in xs:
                block(x, **kw)
        finally:
            for h in hooks:
                h.remove()
        for s in stats.values():
            s.finish()
        if on_block is not None:
            on_block(b, linears, stats)
        xs = [_block_out(block(x, **kw)) for x in xs]
        every.update(stats)
    return every

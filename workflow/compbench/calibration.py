"""Sequential block-by-block calibration statistics.

:func:`sequential`: the inputs of block 0 are captured once; then,
block by block, every linear of the block is hooked to accumulate what the
pruning method needs (input column norms for Wanda, the Hessian
``H = (2/n) Σ X Xᵀ`` for SparseGPT), the block is pruned by a callback, and its
outputs *recomputed with the pruned weights* feed the next block, as the
reference implementations do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

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
        self.add_moments(*moments(x, self.want_hessian))

    def add_moments(self, n: int, sq: torch.Tensor, xtx: torch.Tensor | None) -> None:
        """Accumulate one batch's :func:`moments` (new tensors: shared moments stay intact)."""
        self.sq_norm = sq if self.sq_norm is None else self.sq_norm + sq
        if self.want_hessian:
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


def moments(x: torch.Tensor, want_hessian: bool) -> tuple[int, torch.Tensor, torch.Tensor | None]:
    """One batch's (rows n, Σ x_j² per column, XᵀX or None), in float32 whatever x's dtype."""
    x = x.reshape(-1, x.shape[-1]).to(torch.float32)
    return x.shape[0], (x * x).sum(0), (x.T @ x if want_hessian else None)


class _SharedMoments:
    """The moments of each distinct input tensor of one block call, computed once.

    q/k/v read one tensor (the attention norm's output), gate/up another: their XᵀX is
    the same, so a LLaMA block computes 4 Gram matrices instead of 7 (about a fifth of
    SparseGPT's and GPTQ's calibration FLOPs on SmolLM2). Results are bit-identical:
    the same product of the same tensor. Keyed by the tensor object (held, so its id
    cannot be reused within the call); :meth:`clear` after every call."""

    def __init__(self, want_hessian: bool):
        self.want_hessian = want_hessian
        self._seen: dict[int, tuple] = {}

    def hook(self, stats: LayerStats):
        def fn(_mod, inp, _out):
            x = inp[0]
            if id(x) not in self._seen:  # the entry holds x: its id is not reused before clear()
                self._seen[id(x)] = (x, moments(x, self.want_hessian))
            stats.add_moments(*self._seen[id(x)][1])

        return fn

    def clear(self) -> None:
        self._seen.clear()


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
    from compbench.blocks import decoder_blocks, linear_modules

    blocks = decoder_blocks(model)
    names = {}
    for b, name, mod in linear_modules(model):
        names.setdefault(b, {})[name] = mod
    xs, kw = capture_block_inputs(model, blocks, ids, device, batch_size)
    every: dict[str, LayerStats] = {}
    for b, block in enumerate(tqdm(blocks, desc="blocks", mininterval=5)):
        linears = names.get(b, {})
        stats = {n: LayerStats(m.in_features, want_hessian) for n, m in linears.items()}
        shared = _SharedMoments(want_hessian)
        hooks = [m.register_forward_hook(shared.hook(stats[n])) for n, m in linears.items()]
        try:
            for x in xs:
                block(x, **kw)
                shared.clear()
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

"""Pruning as a compression intervention: Wanda and SparseGPT of the pruning
line (compbench.prune), uniform sparsity over every decoder linear, as in the
composability paper. Average bits per weight: 16·(1 − s) + s (a kept weight at
16 bits, one mask bit per weight; the issue's convention)."""

from __future__ import annotations

from compbench.compose.interventions.registry import register


def _prune(method: str, model, ctx, sparsity: float) -> dict:
    from compbench.blocks import decoder_blocks
    from compbench.prune.methods import Pattern, prune_model

    Pattern(ratio=sparsity)  # validates the range, naming the bad value
    ratios = {b: float(sparsity) for b in range(len(decoder_blocks(model)))}
    masks, _ = prune_model(model, method, ratios, None, ctx.calib_ids, ctx.device)
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    s = 1 - kept / total
    return {"sparsity": s, "avg_bits": 16 * (1 - s) + s}


@register("wanda", "compress", needs_calibration=True)
def wanda(model, ctx, sparsity: float = 0.5) -> dict:
    return _prune("wanda", model, ctx, sparsity)


@register("sparsegpt", "compress", needs_calibration=True)
def sparsegpt(model, ctx, sparsity: float = 0.5) -> dict:
    return _prune("sparsegpt", model, ctx, sparsity)

"""Magnitude pruning: |W|, one threshold per matrix (Wanda repo's
``prune_magnitude``); N:M: the N smallest |W| of every M consecutive inputs of a row."""

import torch

from compbench.prune.registry import Pattern, nm_prune_mask, register


@register("magnitude", needs_calibration=False)
def magnitude(W: torch.Tensor, stats, pattern: Pattern):
    metric = W.abs()
    if pattern.is_nm:
        return ~nm_prune_mask(metric, pattern.n, pattern.m), None
    k = int(W.numel() * pattern.ratio)
    if k == 0:
        return torch.ones_like(W, dtype=torch.bool), None
    # Prune exactly the k smallest (ties broken by position, unlike the
    # reference's `<= thresh`, so the sparsity is exact).
    order = torch.argsort(metric.flatten(), stable=True)
    keep = torch.ones(W.numel(), dtype=torch.bool, device=W.device)
    keep[order[:k]] = False
    return keep.view_as(W), None

"""Wanda (Sun et al., 2024): score S_ij = |W_ij| · ‖X_j‖₂ (Eq. 1), compared within
each output row: the ``ratio × in_features`` lowest-scoring weights of every row
are pruned; N:M: the N lowest of every M consecutive inputs of a row."""

import torch

from compbench.prune.registry import Pattern, nm_prune_mask, register


def scores(W: torch.Tensor, stats) -> torch.Tensor:
    return W.abs() * stats.col_norm.to(W.device).reshape(1, -1)


@register("wanda", needs_calibration=True)
def wanda(W: torch.Tensor, stats, pattern: Pattern):
    metric = scores(W, stats)
    if pattern.is_nm:
        return ~nm_prune_mask(metric, pattern.n, pattern.m), None
    k = int(W.shape[1] * pattern.ratio)
    keep = torch.ones_like(W, dtype=torch.bool)
    if k:
        idx = torch.argsort(metric, dim=1, stable=True)[:, :k]
        keep.scatter_(1, idx, False)
    return keep, None

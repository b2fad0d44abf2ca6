"""Layerwise sparsity allocation: per-block ratios whose parameter-weighted mean is the target.

Every rule in :data:`ALLOCATORS` is ``fn(target, params, metrics, **hyper) ->
ratios`` with one ratio per decoder block and Σ_ℓ P_ℓ s_ℓ / Σ_ℓ P_ℓ = target
(P_ℓ = weights in block ℓ's linears). :func:`allocate` is the front the workflow
calls: it validates the inputs, and handles ratios outside [0, max_ratio] (the
references do not: AlphaPruning with LLaMA-7B, ε = 0.3 and S = 0.8 gives a
block at 1.06) by clipping and renormalising, or by refusing.

Rules:

* ``uniform``: s_ℓ = S.
* ``owl`` (Yin et al., ICML 2024, Outlier Weighed Layerwise sparsity, Sec. 3):
  LOD_ℓ (metrics["lod"], see :func:`owl_lod`) min-max normalised to n_ℓ ∈ [0, 1];
  s_ℓ = S − 2λ(n_ℓ − n̄): more outliers, less pruning. Matched to the reference
  (luuyin/OWL lib/prune_all.py, ``prune_wanda_outlier`` and siblings): there the
  *density* is (LOD − min)/(max − min)·2λ − mean(·) + (1 − S), with an unweighted
  mean over blocks. We subtract the parameter-weighted mean n̄ instead, which is
  the same number when every block has the same size (every LLaMA) and makes the
  weighted mean exactly S otherwise. The reference then clamps s ≤ 0 to 0.01
  per layer; here out-of-range ratios go through :func:`allocate`'s overflow rule.
* ``alpha`` (Lu et al., NeurIPS 2024, AlphaPruning Eq. 3): with q_ℓ = metrics["alpha"]
  (block-wise mean α, see :func:`compbench.spectra.esd.block_metric`),
  r_ℓ = (1 − ε) + 2ε (q_ℓ − q_min)/(q_max − q_min) and s_ℓ = r_ℓ·S·ΣP / Σ P r:
  higher α (a lighter tail, a less well-trained block), more pruning. Matched to
  haiquanlu/AlphaPruning lib/prune.py ``ww_sparsity`` (s1 = 1 − ε, s2 = 1 + ε,
  the block mean repeated over the block's layers and the scaler taken over
  layers, which is the same as over blocks weighted by their parameters).
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import numpy as np
import torch

from compbench.registry import Registry

ALLOCATORS: Registry[Callable[..., np.ndarray]] = Registry("allocation rule")

OVERFLOW = ("clip", "refuse")


def weighted_mean(ratios, params) -> float:
    p = np.asarray(params, dtype=np.float64)
    return float(np.sum(p * np.asarray(ratios, dtype=np.float64)) / np.sum(p))


def _minmax(q: np.ndarray) -> np.ndarray:
    """(q − min)/(max − min); all zeros for a constant metric (the references divide by 0)."""
    span = q.max() - q.min()
    return np.zeros_like(q) if span == 0 else (q - q.min()) / span


def _metric(metrics: dict, key: str, n_blocks: int, rule: str) -> np.ndarray:
    if key not in metrics:
        raise KeyError(f"allocation rule {rule!r} needs metrics[{key!r}] (one value per block); given: {', '.join(metrics) or '(none)'}")
    q = np.asarray(metrics[key], dtype=np.float64).reshape(-1)
    if len(q) != n_blocks:
        raise ValueError(f"metrics[{key!r}] has {len(q)} values but there are {n_blocks} blocks")
    bad = np.flatnonzero(~np.isfinite(q))
    if len(bad):
        raise ValueError(f"metrics[{key!r}] is not finite in blocks {bad.tolist()} ({q[bad].tolist()})")
    return q


@ALLOCATORS.register("uniform")
def uniform(target: float, params: np.ndarray, metrics: dict) -> np.ndarray:
    return np.full(len(params), float(target))


@ALLOCATORS.register("owl")
def owl(target: float, params: np.ndarray, metrics: dict, M: float = 5.0, lam: float = 0.08) -> np.ndarray:
    """OWL: s_ℓ = S − 2λ(n_ℓ − n̄_P), n = min-max-normalised LOD (M enters through the LOD)."""
    if lam < 0:
        raise ValueError(f"owl: lam={lam} must be ≥ 0")
    p = np.asarray(params, dtype=np.float64)
    n = _minmax(_metric(metrics, "lod", len(p), "owl"))
    return float(target) - 2 * lam * (n - np.sum(p * n) / np.sum(p))


@ALLOCATORS.register("alpha")
def alpha(target: float, params: np.ndarray, metrics: dict, epsilon: float = 0.3) -> np.ndarray:
    """AlphaPruning: s_ℓ = r_ℓ·S·ΣP/ΣPr, r_ℓ = (1 − ε) + 2ε·minmax(α)_ℓ."""
    if not 0 <= epsilon < 1:
        raise ValueError(f"alpha: epsilon={epsilon} must be in [0, 1)")
    p = np.asarray(params, dtype=np.float64)
    r = (1 - epsilon) + 2 * epsilon * _minmax(_metric(metrics, "alpha", len(p), "alpha"))
    return r * float(target) * np.sum(p) / np.sum(p * r)


@ALLOCATORS.register("alpha_rev")
def alpha_rev(target: float, params: np.ndarray, metrics: dict, epsilon: float = 0.3) -> np.ndarray:
    """Control for AlphaPruning, not a published method: the same ε band with the
    direction reversed, r_ℓ = (1 − ε) + 2ε·(1 − minmax(α)_ℓ), so heavy-tailed
    (low-α) blocks are pruned *more*. If this beats ``alpha`` on a model, the
    paper's direction (low α = well trained = prune less) does not hold there."""
    if not 0 <= epsilon < 1:
        raise ValueError(f"alpha_rev: epsilon={epsilon} must be in [0, 1)")
    p = np.asarray(params, dtype=np.float64)
    r = (1 - epsilon) + 2 * epsilon * (1 - _minmax(_metric(metrics, "alpha", len(p), "alpha_rev")))
    return r * float(target) * np.sum(p) / np.sum(p * r)


def owl_lod(scores: list[torch.Tensor], M: float) -> float:
    """One block's layerwise outlier distribution (OWL Eq. 4): 100 × the fraction of
    the block's Wanda scores |W_ij|·‖X_j‖₂ (all its linears flattened together)
    strictly above M × their mean (reference: ``check_outlier_mean``)."""
    if not scores:
        raise ValueError("owl_lod needs at least one score tensor")
    if M <= 0:
        raise ValueError(f"owl_lod: M={M} must be > 0")
    flat = torch.cat([s.detach().flatten().to("cpu", torch.float64) for s in scores])
    return float((flat > flat.mean() * M).sum().item()) / flat.numel() * 100.0


def hyper_names(name: str) -> dict:
    """The hyperparameters of a rule and their defaults."""
    sig = inspect.signature(ALLOCATORS.get(name))
    return {k: v.default for k, v in list(sig.parameters.items())[3:]}


def clip_renormalise(ratios: np.ndarray, params: np.ndarray, target: float, max_ratio: float) -> np.ndarray:
    """Clip ratios to [0, max_ratio] and rescale the unclipped ones so that the
    parameter-weighted mean stays ``target``. Iterates (a clipped block stays
    clipped) until every ratio is in range; multiplicative rescaling keeps the
    proportions of the free blocks, as AlphaPruning's own scaler does."""
    s = np.asarray(ratios, dtype=np.float64).copy()
    p = np.asarray(params, dtype=np.float64)
    fixed = np.zeros(len(s), dtype=bool)
    for _ in range(len(s) + 1):
        low, high = (s < 0) & ~fixed, (s > max_ratio) & ~fixed
        if not (low.any() or high.any()):
            break
        s[low], s[high] = 0.0, max_ratio
        fixed |= low | high
        free = ~fixed
        want = target * p.sum() - np.sum(p[fixed] * s[fixed])
        have = np.sum(p[free] * s[free])
        if not free.any() or have <= 0:
            break
        s[free] *= want / have
    if not math.isclose(weighted_mean(s, p), target, rel_tol=0, abs_tol=1e-9) or (s < 0).any() or (s > max_ratio + 1e-12).any():
        raise ValueError(f"cannot clip ratios {np.round(ratios, 4).tolist()} into [0, {max_ratio}] with weighted mean {target}")
    return s


def allocate(
    name: str,
    target: float,
    params,
    metrics: dict | None = None,
    hyper: dict | None = None,
    on_overflow: str = "clip",
    max_ratio: float = 0.99,
) -> tuple[np.ndarray, dict]:
    """Per-block sparsity ratios of rule ``name`` at parameter-weighted mean ``target``.

    Ratios outside [0, max_ratio] (a block pruned at ≥ 100 %, or a negative
    ratio): ``on_overflow="clip"`` clips them and renormalises the other blocks
    (recorded in ``info``), ``"refuse"`` raises ValueError. Returns
    ``(ratios, info)``; info records the rule, target, hyperparameters actually
    used, the unclipped ratios and what clipping did.
    """
    fn = ALLOCATORS.get(name)  # KeyError listing the allowed rules
    if isinstance(target, bool) or not isinstance(target, (int, float, np.floating)) or not 0 <= float(target) < 1:
        raise ValueError(f"target sparsity {target!r} is not a number in [0, 1)")
    if on_overflow not in OVERFLOW:
        raise ValueError(f"on_overflow={on_overflow!r}; allowed: {', '.join(OVERFLOW)}")
    if not 0 < max_ratio < 1:
        raise ValueError(f"max_ratio={max_ratio} must be in (0, 1)")
    target = float(target)
    p = np.asarray(params, dtype=np.float64).reshape(-1)
    if len(p) == 0 or (p <= 0).any() or not np.isfinite(p).all():
        raise ValueError(f"params must be positive parameter counts, one per block; got {p.tolist()}")
    if target > max_ratio:
        raise ValueError(f"target sparsity {target} exceeds max_ratio {max_ratio}")
    allowed = hyper_names(name)
    hyper = dict(hyper or {})
    unknown = sorted(set(hyper) - set(allowed))
    if unknown:
        raise ValueError(
            f"allocation rule {name!r} has no hyperparameter {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed) or '(none)'}"
        )
    used = {**allowed, **hyper}
    raw = np.asarray(fn(target, p, dict(metrics or {}), **hyper), dtype=np.float64)
    info = {
        "rule": name,
        "target": target,
        "hyper": used,
        "raw_ratios": raw.tolist(),
        "raw_weighted_mean": weighted_mean(raw, p),
        "raw_min": float(raw.min()),
        "raw_max": float(raw.max()),
        "max_ratio": max_ratio,
        "on_overflow": on_overflow,
        "clipped": False,
        "clipped_blocks": [],
    }
    out_of_range = np.flatnonzero((raw < 0) | (raw > max_ratio))
    if len(out_of_range) == 0:
        return raw, info
    where = ", ".join(f"block {i}: {raw[i]:.4f}" for i in out_of_range)
    if on_overflow == "refuse":
        raise ValueError(
            f"allocation {name!r} at target {target} gives ratios outside [0, {max_ratio}] ({where}); use on_overflow='clip' or a smaller epsilon/lambda"
        )
    ratios = clip_renormalise(raw, p, target, max_ratio)
    info.update(
        clipped=True,
        clipped_blocks=out_of_range.tolist(),
        overflow=where,
        # share of all weights whose pruning moved to other blocks
        moved_fraction=float(np.sum(p * np.abs(raw - ratios)) / np.sum(p) / 2),
        max_change=float(np.max(np.abs(raw - ratios))),
    )
    return ratios, info

"""Weight spectra and heavy-tailed (HT-SR) power-law alpha of every decoder linear.

AlphaPruning (Lu et al., NeurIPS 2024, Sec. 3.1, Eq. 1-2) reads the shape of each
weight matrix's empirical spectral density (ESD): the eigenvalues λ = σ² of
WᵀW, whose tail is fitted by a power law p(λ) ∝ λ^(-α) above some xmin. Lower
α = heavier tail = a better-trained layer, which AlphaPruning prunes less.

The fit (Clauset, Shalizi & Newman 2009, as WeightWatcher and AlphaPruning's
``net_esd_estimator`` implement it): for a candidate xmin = λ_i with n = N - i
eigenvalues in the tail,

    α_i = 1 + n / Σ_{j≥i} ln(λ_j / λ_i)                      (Hill / continuous MLE)
    D_i = max_{k<n} | 1 - (λ_{i+k}/λ_i)^(1-α_i) - k/n |       (KS distance, only where α_i > 1)

and α = α_i at argmin_i D_i (first index on ties). Which candidates are scanned
is the *xmin rule*, registered by name in :data:`XMIN_RULES`:

* ``full``: every eigenvalue but the largest (WeightWatcher's default ``alpha``;
  like WeightWatcher, eigenvalues ≤ 1e-5 are dropped first);
* ``mid``: only the median, i = int(N/2) (AlphaPruning's ``xmin_mid``);
* ``peak``: AlphaPruning's default ``alpha_peak`` (``fix_fingers='xmin_peak'``):
  candidates λ_i ≤ 1.5·p where p = 10^(left edge of the fullest of 100 equal bins
  of log10 λ). The reference's lower bound is written ``log10(0.95·p)`` but is
  compared against λ on a *linear* scale (a slip it shares with WeightWatcher's
  ``xmin_range``); it is reproduced as is, and is in practice inactive (it only
  bites when p > ~10.5, and then far below 0.95·p);
* ``peak_corrected``: OUR correction, not the reference: the window
  0.95·p ≤ λ_i ≤ 1.5·p, with the lower bound on the linear scale as intended.

Numerics: eigenvalues are float32 (``svdvals`` of the float32 weight, squared,
sorted ascending, exact zeros dropped); the fit is done in float64 on the same
device; the ``peak`` histogram is computed in float32 with ``torch.histc`` exactly
as the reference does, so the window edges match it bit for bit. Differences
from the reference, all in degenerate cases only: a candidate whose α is not
finite (a tail of equal eigenvalues) is not eligible; and when no candidate has
α > 1 the result is NaN with a ``reason`` (the reference returns α of index 0,
often the placeholder 0). WeightWatcher switches to a bias-corrected fit for
fewer than 20 eigenvalues; this module always uses the standard fit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from compbench.blocks import linear_modules
from compbench.registry import Registry

log = logging.getLogger("compbench.spectra.esd")

WW_EVALS_THRESH = 1e-5  # WeightWatcher's EVALS_THRESH, applied by its default fit
PEAK_BINS = 100  # AlphaPruning's net_esd_estimator(bins=100)
DEFAULT_RULE = "peak"  # AlphaPruning's default metric: alpha_peak


# ----------------------------------------------------------------------- eigenvalues


def eigenvalues(weight: torch.Tensor) -> torch.Tensor:
    """λ = σ² of ``weight`` (the non-zero eigenvalues of WᵀW): float32, ascending,
    on the weight's device. Accepts a batch (..., m, n): then every matrix keeps
    its min(m, n) values (zeros included, so the batch stays rectangular)."""
    w = weight.detach().to(torch.float32)
    if w.ndim < 2:
        raise ValueError(f"eigenvalues needs a matrix, got shape {tuple(w.shape)}")
    # σ(W) = σ(Wᵀ): a wide matrix goes in as its (column-major) transpose, on which LAPACK's
    # gesdd is 1.8-1.9x faster on the CPU (576 x 1536 and 192 x 576, one thread, 2026-12-06).
    lam = torch.linalg.svdvals(w.mT if w.shape[-2] < w.shape[-1] else w).square()
    lam, _ = torch.sort(lam, dim=-1)
    if lam.ndim == 1:
        lam = lam[lam > 0]
    return lam


def batched_eigenvalues(weights: list[torch.Tensor], device: torch.device | str, max_elems: int = 1 << 27) -> list[torch.Tensor]:
    """Eigenvalues of many matrices, in input order, on the CPU.

    On the CPU each matrix is one LAPACK call, several at a time: one SVD of a small matrix
    uses several cores poorly (matrices of SmolLM2's 210 shapes: 6.6 s one at a time on one
    thread, 4.9 s on two, 3.5 s as two one-thread calls at a time; with the wide ones
    transposed, :func:`analyse` of the whole model 7.8 s -> 4.1 s; 2-core AMD EPYC,
    2026-12-06). ``torch.get_num_threads()`` calls run at once, one thread each, as long as
    that many of the largest matrix stay within ``max_elems`` weight elements (memory: a 7B
    model's 4096 x 11008 matrices on 32 cores would otherwise hold 32 copies and their LAPACK
    workspaces); else fewer calls with the threads shared among them. With one thread a call,
    the eigenvalues are the same bits whatever the thread count. On an accelerator, matrices
    of one shape go through ``svdvals`` as one batch (chunks of at most ``max_elems`` elements)."""
    device = torch.device(device)
    if device.type == "cpu":
        threads = torch.get_num_threads()
        largest = max((w.numel() for w in weights), default=1)
        calls = max(1, min(threads, max_elems // max(1, largest)))

        def one(w: torch.Tensor) -> torch.Tensor:
            return eigenvalues(w.detach().to("cpu"))

        if calls == 1:
            return [one(w) for w in weights]
        from concurrent.futures import ThreadPoolExecutor

        # with OpenMP (torch's x86 and CUDA builds) the intra-op thread count is per thread: each pool
        # thread sets its own; a build whose count is global gets the caller's count back afterwards
        try:
            with ThreadPoolExecutor(calls, initializer=torch.set_num_threads, initargs=(threads // calls,)) as pool:
                return list(pool.map(one, weights))
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
    out: list[torch.Tensor | None] = [None] * len(weights)
    by_shape: dict[tuple, list[int]] = {}
    for i, w in enumerate(weights):
        by_shape.setdefault(tuple(w.shape), []).append(i)
    for shape, idx in by_shape.items():
        per = max(1, max_elems // max(1, math.prod(shape)))
        for s in range(0, len(idx), per):
            chunk = idx[s : s + per]
            stack = torch.stack([weights[i].detach().to(device=device, dtype=torch.float32) for i in chunk])
            lam = eigenvalues(stack).cpu()
            for j, i in enumerate(chunk):
                out[i] = lam[j][lam[j] > 0]
    return out  # type: ignore[return-value]


# ------------------------------------------------------------------------ xmin rules


@dataclass(frozen=True)
class Candidates:
    """The eigenvalues the fit uses and the indices i of the candidate xmin = λ_i."""

    lam: torch.Tensor  # float32, ascending, > 0
    idx: torch.Tensor  # int64 candidate indices into lam, ascending
    note: str = ""  # why there are none, if so


XMIN_RULES: Registry[Callable[[torch.Tensor], Candidates]] = Registry("xmin rule")


@XMIN_RULES.register("full")
def _full(lam: torch.Tensor) -> Candidates:
    # WeightWatcher's default fit (WWFit.fit_power_law_standard): drop λ ≤ 1e-5,
    # then every eigenvalue but the largest is a candidate.
    lam = lam[lam > WW_EVALS_THRESH]
    return Candidates(lam, torch.arange(max(len(lam) - 1, 0), device=lam.device))


@XMIN_RULES.register("mid")
def _mid(lam: torch.Tensor) -> Candidates:
    # AlphaPruning net_esd_estimator(fix_fingers='xmin_mid', xmin_pos=2): i = int(N / 2).
    n = len(lam)
    if n < 2:
        return Candidates(lam, torch.zeros(0, dtype=torch.long, device=lam.device))
    return Candidates(lam, torch.tensor([int(n / 2)], device=lam.device))


def peak_window(lam: torch.Tensor, corrected: bool = False) -> tuple[float, float, float]:
    """(peak p, lower bound, upper bound) of the ``xmin_peak`` window, computed as
    AlphaPruning's net_esd_estimator does (float32 torch.histc of log10 λ, 100 bins
    over [min, max], first fullest bin, p = 10^its left edge). The reference's
    lower bound is log10(0.95·p) (compared with linear λ); ``corrected`` gives 0.95·p."""
    lam = lam.detach().to("cpu", torch.float32)
    h = torch.log10(lam)
    lo, hi = h.min(), h.max()
    counts = torch.histc(h, PEAK_BINS, min=lo.item(), max=hi.item())
    edges = torch.linspace(lo.item(), hi.item(), PEAK_BINS + 1)
    peak = 10 ** edges[torch.argmax(counts)]
    lower = 0.95 * peak if corrected else torch.log10(0.95 * peak)
    return peak.item(), lower.item(), (1.5 * peak).item()


def _peak_rule(lam: torch.Tensor, corrected: bool) -> Candidates:
    if len(lam) < 2:
        return Candidates(lam, torch.zeros(0, dtype=torch.long, device=lam.device))
    peak, lower, upper = peak_window(lam, corrected)
    cpu = lam[:-1].to("cpu", torch.float32)
    # reference loop: `if xmin < xmin_min: continue; if xmin > xmin_max: break`
    keep = (cpu >= torch.tensor(lower, dtype=torch.float32)) & (cpu <= torch.tensor(upper, dtype=torch.float32))
    idx = torch.nonzero(keep).flatten().to(lam.device)
    note = "" if len(idx) else f"no eigenvalue in the peak window [{lower:.4g}, {upper:.4g}]"
    return Candidates(lam, idx, note)


@XMIN_RULES.register("peak")
def _peak(lam: torch.Tensor) -> Candidates:
    return _peak_rule(lam, corrected=False)


@XMIN_RULES.register("peak_corrected")
def _peak_corrected(lam: torch.Tensor) -> Candidates:
    return _peak_rule(lam, corrected=True)


# ------------------------------------------------------------------------------- fit


def _as_tensor(eigs) -> torch.Tensor:
    if isinstance(eigs, np.ndarray):
        eigs = torch.from_numpy(np.ascontiguousarray(eigs))
    if not isinstance(eigs, torch.Tensor):
        eigs = torch.as_tensor(eigs)
    lam = eigs.detach().flatten().to(torch.float32)
    if not torch.isfinite(lam).all():
        raise ValueError("eigenvalues contain NaN or inf")
    lam, _ = torch.sort(lam)
    return lam[lam > 0]


def hill_ks(lam: torch.Tensor, idx: torch.Tensor, chunk_elems: int = 1 << 22) -> tuple[torch.Tensor, torch.Tensor]:
    """α_i (Hill MLE) and D_i (KS distance) of candidate indices ``idx`` into ascending
    ``lam``, in float64 on lam's device; D_i = +inf where α_i is not finite or ≤ 1."""
    x = lam.to(torch.float64)
    n_all = len(x)
    logx = torch.log(x)
    suffix = torch.flip(torch.cumsum(torch.flip(logx, [0]), 0), [0])  # Σ_{j≥i} ln λ_j
    n = (n_all - idx).to(torch.float64)
    alpha = 1 + n / (suffix[idx] - n * logx[idx])
    D = torch.full_like(alpha, math.inf)
    ok = torch.isfinite(alpha) & (alpha > 1)
    cand = torch.nonzero(ok).flatten()
    j = torch.arange(n_all, device=x.device)
    step = max(1, chunk_elems // max(n_all, 1))
    for s in range(0, len(cand), step):
        c = cand[s : s + step]
        i, a, nn_ = idx[c], alpha[c], n[c]
        k = (j[None, :] - i[:, None]).to(torch.float64)  # position inside the tail
        ratio = x[None, :] / x[i][:, None]
        fitted = 1 - ratio ** (1 - a[:, None])  # theoretical CDF of the tail
        empirical = k / nn_[:, None]  # 0, 1/n, ..., (n-1)/n
        diff = torch.where(k >= 0, (fitted - empirical).abs(), torch.zeros((), dtype=torch.float64, device=x.device))
        D[c] = diff.max(dim=1).values
    return alpha, D


def fit_power_law(eigs: torch.Tensor | np.ndarray, xmin_rule: str, device: torch.device | str | None = None) -> dict:
    """Power-law fit of the tail of an ESD under one xmin rule.

    Returns ``dict(alpha, xmin, D, tail_size, reason)``; ``reason`` is "" on success,
    otherwise alpha, xmin and D are NaN and it says why (never raises on a bad spectrum).
    """
    rule = XMIN_RULES.get(xmin_rule)
    lam = _as_tensor(eigs)
    if device is not None:
        lam = lam.to(device)
    nan = dict(alpha=math.nan, xmin=math.nan, D=math.nan, tail_size=0)
    if len(lam) < 2:
        return {**nan, "reason": f"fewer than 2 positive eigenvalues ({len(lam)})"}
    cand = rule(lam)
    if len(cand.idx) == 0:
        return {**nan, "reason": cand.note or "no candidate xmin"}
    alpha, D = hill_ks(cand.lam, cand.idx)
    if not torch.isfinite(D).any():
        return {**nan, "reason": f"no candidate xmin with a finite alpha > 1 ({len(cand.idx)} candidates)"}
    best = int(np.argmin(D.cpu().numpy()))  # first minimum, like torch/np argmin in the references
    i = int(cand.idx[best])
    return dict(
        alpha=float(alpha[best]),
        xmin=float(cand.lam[i]),
        D=float(D[best]),
        tail_size=int(len(cand.lam) - i),
        reason="",
    )


# -------------------------------------------------------------------------- analysis


def analyse(
    model: nn.Module,
    rules=("full", "mid", "peak", "peak_corrected"),
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """Eigenvalues and power-law fits of every decoder linear of ``model``.

    Returns one row per matrix (block, module, kind, rows, cols, params, n_eigs,
    lambda_max, then alpha_/xmin_/D_/tail_/reason_<rule> for each rule) and
    ``{module name: eigenvalues (float32, ascending, CPU)}``.
    """
    rules = list(rules)
    for r in rules:
        XMIN_RULES.get(r)  # unknown rule: KeyError listing the allowed ones
    device = torch.device(device)
    mods = linear_modules(model)
    eigs = batched_eigenvalues([m.weight for _, _, m in mods], device)
    rows = []
    it = zip(mods, eigs)
    if progress:
        from tqdm import tqdm

        it = tqdm(list(it), desc="power-law fits", mininterval=5)
    for (block, name, mod), lam in it:
        out, inp = mod.weight.shape
        row = dict(
            block=block,
            module=name,
            kind=name.rsplit(".", 1)[-1],
            rows=int(out),
            cols=int(inp),
            params=int(out * inp),
            n_eigs=int(len(lam)),
            lambda_max=float(lam[-1]) if len(lam) else math.nan,
        )
        lam_dev = lam.to(device)
        for r in rules:
            fit = fit_power_law(lam_dev, r)
            if fit["reason"]:
                log.warning("%s: rule %s: %s", name, r, fit["reason"])
            row.update(
                {
                    f"alpha_{r}": fit["alpha"],
                    f"xmin_{r}": fit["xmin"],
                    f"D_{r}": fit["D"],
                    f"tail_{r}": fit["tail_size"],
                    f"reason_{r}": fit["reason"],
                }
            )
        rows.append(row)
    return pd.DataFrame(rows), {name: lam for (_, name, _), lam in zip(mods, eigs)}


MAPPINGS = ("block_wise",)


def block_metric(per_matrix: pd.DataFrame, rule: str, mapping: str = "block_wise") -> np.ndarray:
    """Per-block metric from per-matrix alphas: ``block_wise`` = the mean α of the
    block's matrices (AlphaPruning's default ``mapping_type``; ww_sparsity averages
    the metric over each block's layers). NaN alphas are left out of the mean."""
    if mapping not in MAPPINGS:
        raise ValueError(f"unknown mapping {mapping!r}; allowed: {', '.join(MAPPINGS)}")
    col = f"alpha_{rule}"
    if col not in per_matrix.columns:
        have = sorted(c[len("alpha_") :] for c in per_matrix.columns if c.startswith("alpha_"))
        raise KeyError(f"no column {col!r}: rule {rule!r} was not computed; computed: {', '.join(have) or '(none)'}")
    g = per_matrix.groupby("block", sort=True)[col]
    n_nan = g.apply(lambda s: int(s.isna().sum()))
    if n_nan.any():
        log.warning("rule %s: NaN alpha left out of the block mean in blocks %s", rule, n_nan[n_nan > 0].to_dict())
    return g.mean().to_numpy(dtype=np.float64)  # pandas mean skips NaN


def block_table(per_matrix: pd.DataFrame, rules) -> pd.DataFrame:
    """One row per block: block, params (weights in its linears), n_matrices, alpha_<rule>."""
    g = per_matrix.groupby("block", sort=True)
    out = pd.DataFrame(
        {"block": sorted(per_matrix["block"].unique()), "params": g["params"].sum().to_numpy(), "n_matrices": g.size().to_numpy()}
    )
    for r in rules:
        out[f"alpha_{r}"] = block_metric(per_matrix, r)
    return out

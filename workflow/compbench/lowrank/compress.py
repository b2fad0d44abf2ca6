"""Low-rank compression: WeLore rank allocation from singular values, factor pairs, artifact.

WeLore (Jaiswal et al. 2024, "From GaLore to WeLore: How Low-Rank Weights
Non-uniformly Emerge from Low-Rank Gradients", arXiv:2407.11239; reference code
VITA-Group/WeLore, ``utils.adaptive_rank_pruning`` and
``lib/rank_reduction.do_rank_reduction``) picks every matrix's rank from its own
singular values, data-free and one-shot. For matrix i with n_i = min(rows, cols)
singular values σ_i1 ≥ ... ≥ σ_in (``torch.svd``), normalised to [0, 1]

    σ̃_ij = (σ_ij − min_j σ_ij) / (max_j σ_ij − min_j σ_ij)

and one global threshold τ, the number of ranks removed is

    k_i(τ) = Σ_j 1[σ̃_ij < τ]            (the heavy tail of small singular values)

so the kept rank is r_i = n_i − k_i. A matrix is a low-rank component (LRC) when
its reduction is large enough to be worth a factor pair,

    LRC_i  ⇔  k_i / n_i > min_ratio      (reference: ``--min_ratio`` 0.4999 for fine-tuning)

and is then replaced by W_i ≈ A_i B_i with A_i = U_r diag(√s_r) (rows × r) and
B_i = diag(√s_r) V_rᵀ (r × cols) (``LowRankLayer``); otherwise it stays dense
(non-low-rank component, N-LRC) and keeps its full rank. The compression ratio is
the *effective rank reduction* the reference reports,

    ρ(τ) = Σ_{i ∈ LRC} k_i / Σ_i n_i .

The reference hard-codes τ per ratio for LLaMA-2-7B (e.g. 0.175 for 50 %); here τ
is searched so that ρ is met for any model: τ* is the smallest normalised singular
value v such that ρ (with k_i = #{σ̃_ij ≤ v}) reaches the target count
T = ⌊ρ_target · Σ n_i + ½⌋. ρ(τ) is a non-decreasing step function; it jumps by
more than one rank where a matrix crosses min_ratio (or values tie), so the
overshoot o = count − T is given back by un-pruning the o pruned singular values
with the largest σ̃ (those nearest the threshold) among LRCs that stay LRCs. The
realised ratio is then exactly T / Σ n_i (the rounding to whole ranks is
reported as ``rounding`` = realised − target); o is recorded as ``trimmed``. Where
the overshoot cannot all be given back without turning an LRC into an N-LRC (a
coarse grid: few matrices, few ranks each), the realised ratio stays above the
target and ``rounding`` says by how much (with a warning).

``uniform`` removes the same fraction of every matrix's rank, k_i = ⌊ρ n_i⌋
(reference ``uniform_rank_pruning``), every matrix an LRC (the reference runs it
with ``min_ratio`` 0), with the remainder T − Σ k_i given as +1 to the matrices of
largest fractional part, so that it too meets T exactly.

Every kept rank is at least 1.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from compbench.artifacts import CorruptArtifact, atomic_path, load_tensors, read_json, save_tensors, write_json
from compbench.registry import Registry
from compbench.variants import KINDS

log = logging.getLogger("compbench.lowrank.compress")

DEFAULT_MIN_RATIO = 0.4999  # reference welore_continual_finetune.py --min_ratio

# name -> fn(singular values {module: descending 1-D tensor}, ratio, **hyper) -> (pruned ranks {module: k}, lrc {module: bool}, info)
ALLOCATIONS: Registry[Callable] = Registry("low-rank allocation")


# ------------------------------------------------------------------------ allocation


def normalised(sv: torch.Tensor) -> np.ndarray:
    """σ̃ = (σ − min σ) / (max σ − min σ), float64 (all ones when max = min: nothing
    stands out as a tail; the reference divides by zero and prunes nothing)."""
    s = np.asarray(sv.detach().cpu().to(torch.float64).numpy() if isinstance(sv, torch.Tensor) else sv, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"singular values must be a non-empty vector, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("singular values contain NaN or inf")
    lo, hi = s.min(), s.max()
    if hi <= lo:
        return np.ones_like(s)
    return (s - lo) / (hi - lo)


def _check_ratio(ratio: float) -> None:
    if not (isinstance(ratio, (int, float)) and 0 <= ratio < 1):
        raise ValueError(f"low-rank compression ratio {ratio!r} is outside [0, 1)")


def target_count(full: dict[str, int], ratio: float) -> int:
    """T = ⌊ρ Σ n_i + ½⌋ (halves round up)."""
    return int(math.floor(ratio * sum(full.values()) + 0.5))


@ALLOCATIONS.register("welore")
def welore(sv: dict[str, torch.Tensor], ratio: float, min_ratio: float = DEFAULT_MIN_RATIO):
    """WeLore's rule (module docstring): one threshold τ on normalised singular values."""
    _check_ratio(ratio)
    if not 0 <= min_ratio < 1:
        raise ValueError(f"lowrank.min_ratio={min_ratio!r} is outside [0, 1)")
    names = list(sv)
    norm = {m: np.sort(normalised(sv[m])) for m in names}  # ascending
    full = {m: len(norm[m]) for m in names}
    T = target_count(full, ratio)

    def pruned(v: float) -> dict[str, int]:
        # k_i = #{σ̃ ≤ v}, at most n_i − 1 (keep rank ≥ 1)
        return {m: min(int(np.searchsorted(norm[m], v, side="right")), full[m] - 1) for m in names}

    def realised(k: dict[str, int]) -> int:
        return sum(k[m] for m in names if k[m] / full[m] > min_ratio)

    values = np.unique(np.concatenate([norm[m] for m in names]))
    if T == 0:
        k = {m: 0 for m in names}
        tau = 0.0
    else:
        if realised(pruned(values[-1])) < T:
            raise ValueError(
                f"welore cannot reach a rank reduction of {ratio} (at most {realised(pruned(values[-1])) / sum(full.values()):.4f} "
                f"with every matrix kept at rank >= 1 and min_ratio={min_ratio})"
            )
        lo, hi = 0, len(values) - 1  # smallest index with realised >= T
        while lo < hi:
            mid = (lo + hi) // 2
            if realised(pruned(values[mid])) >= T:
                hi = mid
            else:
                lo = mid + 1
        tau = float(values[lo])
        k = pruned(tau)
    lrc = {m: k[m] / full[m] > min_ratio for m in names}
    count = sum(k[m] for m in names if lrc[m])
    over = count - T
    trimmed = 0
    if over > 0:
        # give back the pruned singular values nearest the threshold (largest σ̃) from LRCs that stay LRCs
        cand = sorted(((norm[m][j], m) for m in names if lrc[m] for j in range(k[m])), reverse=True)
        for _, m in cand:
            if trimmed == over:
                break
            if (k[m] - 1) / full[m] > min_ratio:
                k[m] -= 1
                trimmed += 1
        if trimmed < over:
            log.warning("welore: could only give back %d of an overshoot of %d ranks", trimmed, over)
    k = {m: (k[m] if lrc[m] else 0) for m in names}
    info = {"tau": tau, "min_ratio": min_ratio, "target_count": T, "trimmed": trimmed}
    return k, lrc, info


@ALLOCATIONS.register("uniform")
def uniform(sv: dict[str, torch.Tensor], ratio: float, min_ratio: float | None = None):
    """The same rank ratio for every matrix (k_i = ⌊ρ n_i⌋ plus the remainder to meet T); all LRCs."""
    _check_ratio(ratio)
    names = list(sv)
    full = {m: int(len(sv[m])) for m in names}
    T = target_count(full, ratio)
    raw = {m: ratio * full[m] for m in names}
    k = {m: min(int(math.floor(raw[m])), full[m] - 1) for m in names}
    rest = T - sum(k.values())
    order = sorted(names, key=lambda m: (-(raw[m] - math.floor(raw[m])), -full[m], names.index(m)))
    i = 0
    while rest > 0 and i < 10 * len(order) + 10:
        m = order[i % len(order)]
        if k[m] < full[m] - 1:
            k[m] += 1
            rest -= 1
        i += 1
    if rest > 0:
        raise ValueError(f"uniform cannot reach a rank reduction of {ratio} with every matrix kept at rank >= 1")
    lrc = {m: k[m] > 0 for m in names}
    return k, lrc, {"tau": math.nan, "min_ratio": 0.0, "target_count": T, "trimmed": 0}


def allocate(method: str, matrices: pd.DataFrame, sv: dict[str, torch.Tensor], ratio: float, **hyper) -> tuple[pd.DataFrame, dict]:
    """Per-matrix table: module, block, kind, rows, cols, full_rank, pruned_rank,
    kept_rank, lrc, params_before, params_after; ``info`` the realised ratios.

    ``matrices`` has one row per decoder linear (module, block, kind, rows, cols),
    as the spectra stage writes it; ``sv`` the singular values by module."""
    fn = ALLOCATIONS.get(method)
    missing = [m for m in matrices["module"] if m not in sv]
    if missing:
        raise KeyError(f"no singular values for {len(missing)} matrices, e.g. {missing[0]!r}")
    svs = {}
    for row in matrices.itertuples():
        n = min(int(row.rows), int(row.cols))
        s = torch.as_tensor(sv[row.module]).flatten().to(torch.float64)
        s = torch.sort(s, descending=True).values[:n]
        if len(s) < n:  # the spectra stage drops exact zeros: restore them
            s = torch.cat([s, s.new_zeros(n - len(s))])
        svs[row.module] = s
    k, lrc, info = fn(svs, ratio, **hyper)
    rows = []
    for row in matrices.itertuples():
        m, n = row.module, len(svs[row.module])
        r = n - k[m]
        before = int(row.rows) * int(row.cols)
        after = r * (int(row.rows) + int(row.cols)) if lrc[m] else before
        rows.append(
            dict(
                module=m,
                block=int(row.block),
                kind=str(row.kind),
                rows=int(row.rows),
                cols=int(row.cols),
                full_rank=n,
                pruned_rank=k[m],
                kept_rank=r,
                lrc=bool(lrc[m]),
                params_before=before,
                params_after=after,
            )
        )
    df = pd.DataFrame(rows)
    total = int(df.full_rank.sum())
    realised = float(df.pruned_rank.sum() / total)
    info = dict(
        info,
        method=method,
        target=ratio,
        rank_reduction=realised,
        rounding=realised - ratio,
        param_compression=float(1 - df.params_after.sum() / df.params_before.sum()),
        n_lrc=int(df.lrc.sum()),
        n_matrices=len(df),
    )
    return df, info


# ---------------------------------------------------------------------- factorisation


def factorise(weight: torch.Tensor, rank: int, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """W ≈ A B with A = U_r diag(√s_r) (out × r), B = diag(√s_r) V_rᵀ (r × in): the best
    rank-r approximation (Eckart-Young), split as the reference's LowRankLayer does.
    The SVD runs in float64 on the CPU and float32 elsewhere; factors in ``dtype``
    (default: the weight's)."""
    if weight.ndim != 2:
        raise ValueError(f"factorise needs a matrix, got shape {tuple(weight.shape)}")
    n = min(weight.shape)
    if not 1 <= rank <= n:
        raise ValueError(f"rank {rank} is outside [1, {n}] for a {tuple(weight.shape)} matrix")
    work = torch.float64 if weight.device.type == "cpu" else torch.float32
    U, S, Vh = torch.linalg.svd(weight.detach().to(work), full_matrices=False)
    root = S[:rank].sqrt()
    A = U[:, :rank] * root[None, :]
    B = root[:, None] * Vh[:rank]
    out = dtype or weight.dtype
    return A.to(out).contiguous(), B.to(out).contiguous()


class LowRankLinear(nn.Module):
    """y = U(V(x)) (+ bias): a linear layer stored as a factor pair. ``V`` (in → r)
    and ``U`` (r → out) are plain nn.Linear, so optimisers, peft and lm-eval see
    ordinary modules; ``U.weight`` = A, ``V.weight`` = B of :func:`factorise`."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = False, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.V = nn.Linear(in_features, rank, bias=False, device=device, dtype=dtype)
        self.U = nn.Linear(rank, out_features, bias=bias, device=device, dtype=dtype)

    @classmethod
    def from_linear(cls, lin: nn.Linear, rank: int) -> "LowRankLinear":
        A, B = factorise(lin.weight, rank)
        mod = cls(lin.in_features, lin.out_features, rank, bias=lin.bias is not None, device=lin.weight.device, dtype=lin.weight.dtype)
        with torch.no_grad():
            mod.U.weight.copy_(A)
            mod.V.weight.copy_(B)
            if lin.bias is not None:
                mod.U.bias.copy_(lin.bias)
        return mod

    def forward(self, x):
        return self.U(self.V(x))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def compress(model: nn.Module, ranks: dict[str, int]) -> nn.Module:
    """Replace each named linear by a LowRankLinear of the given kept rank (in place)."""
    for name, r in ranks.items():
        lin = model.get_submodule(name)
        if not isinstance(lin, nn.Linear):
            raise TypeError(f"{name} is a {type(lin).__name__}, not an nn.Linear")
        _set_module(model, name, LowRankLinear.from_linear(lin, int(r)))
    return model


def lowrank_modules(model: nn.Module) -> dict[str, LowRankLinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LowRankLinear)}


# -------------------------------------------------------------------------- artifact
#
# A low-rank variant directory:
#   variant.json          {"kind": "lowrank", "base": <dense model dir>, "ranks": {module: r}, ...recipe}
#   factors.safetensors   "<module>.U" (out × r) and "<module>.V" (r × in) [+ "<module>.bias"] per LRC
#   tensors.safetensors   only where a fine-tuning changed them: base tensors (state-dict names)
#                         whose values differ from the base model (N-LRC weights, norms, ...)


def factor_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, mod in lowrank_modules(model).items():
        out[f"{name}.U"] = mod.U.weight.detach().cpu()
        out[f"{name}.V"] = mod.V.weight.detach().cpu()
        if mod.U.bias is not None:
            out[f"{name}.bias"] = mod.U.bias.detach().cpu()
    return out


def changed_tensors(model: nn.Module, base: nn.Module) -> dict[str, torch.Tensor]:
    """Tensors of ``model`` outside its factor pairs that differ (bitwise) from ``base``."""
    lr = set(lowrank_modules(model))
    base_sd = base.state_dict()
    out = {}
    for k, v in model.state_dict().items():
        if any(k.startswith(m + ".") for m in lr):
            continue
        if k not in base_sd:
            raise KeyError(f"tensor {k!r} is not in the base model")
        if v.shape != base_sd[k].shape or not torch.equal(v.detach().cpu(), base_sd[k].detach().cpu()):
            out[k] = v.detach().cpu()
    return out


def save(out_dir, base_dir, model: nn.Module, recipe: dict, base_model: nn.Module | None = None) -> None:
    """Write a low-rank variant: factor pairs, plus tensors that differ from the base (if ``base_model``)."""
    ranks = {n: m.rank for n, m in lowrank_modules(model).items()}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        save_tensors(tmp / "factors.safetensors", factor_tensors(model), {"ranks": json.dumps(ranks)})
        changed = changed_tensors(model, base_model) if base_model is not None else {}
        if changed:
            save_tensors(tmp / "tensors.safetensors", changed)
        write_json(tmp / "variant.json", {"kind": "lowrank", "base": str(base_dir), "ranks": ranks, **recipe})


def apply(model: nn.Module, variant_dir, manifest: dict) -> nn.Module:
    """Rebuild the factorised model from a dense base ``model`` (in place)."""
    variant_dir = Path(variant_dir)
    factors = load_tensors(variant_dir / "factors.safetensors")
    ranks = manifest.get("ranks")
    if not isinstance(ranks, dict):
        raise CorruptArtifact(f"{variant_dir}/variant.json: no 'ranks' mapping")
    modules = dict(model.named_modules())
    for name, r in ranks.items():
        lin = modules.get(name)
        if not isinstance(lin, nn.Linear):
            raise CorruptArtifact(f"{variant_dir}: factors for {name!r}, which is no linear of the base model")
        A, B = factors.get(f"{name}.U"), factors.get(f"{name}.V")
        if A is None or B is None:
            raise CorruptArtifact(f"{variant_dir}: factors of {name!r} missing from factors.safetensors")
        if tuple(A.shape) != (lin.out_features, r) or tuple(B.shape) != (r, lin.in_features):
            raise CorruptArtifact(
                f"{variant_dir}: factors of {name!r} have shapes {tuple(A.shape)}, {tuple(B.shape)}; "
                f"expected ({lin.out_features}, {r}), ({r}, {lin.in_features})"
            )
        w = lin.weight
        mod = LowRankLinear(lin.in_features, lin.out_features, int(r), bias=f"{name}.bias" in factors, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            mod.U.weight.copy_(A)
            mod.V.weight.copy_(B)
            if mod.U.bias is not None:
                mod.U.bias.copy_(factors[f"{name}.bias"])
        _set_module(model, name, mod)
    tpath = variant_dir / "tensors.safetensors"
    if tpath.exists():
        sd = model.state_dict()
        with torch.no_grad():
            for k, v in load_tensors(tpath).items():
                if k not in sd or tuple(sd[k].shape) != tuple(v.shape):
                    raise CorruptArtifact(f"{tpath}: tensor {k!r} {tuple(v.shape)} does not match the base model")
                sd[k].copy_(v)
    return model


@KINDS.register("lowrank")
def _load(path, manifest, device, dtype):
    from compbench.models import load

    model = load(manifest["base"], device=device, dtype=dtype)
    return apply(model, path, manifest)


def manifest(variant_dir) -> dict:
    return read_json(Path(variant_dir) / "variant.json")

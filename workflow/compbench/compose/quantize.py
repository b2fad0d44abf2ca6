"""Uniform (round-to-nearest) weight quantisation, shared by GPTQ and AWQ.

Asymmetric min-max (the GPTQ reference's ``Quantizer`` with ``sym=False``): for a
group of weights x, scale = (max(x, 0) − min(x, 0)) / (2^b − 1), zero =
round(−min(x, 0) / scale), q = clamp(round(x / scale) + zero, 0, 2^b − 1),
x̂ = scale · (q − zero). Symmetric: scale = 2·max|x| / (2^b − 1), zero = (2^b − 1 + 1) / 2.
The range always contains 0 (as the reference); an all-zero group gets scale 1.
"""

from __future__ import annotations

import torch


def params(x: torch.Tensor, bits: int, sym: bool = False):
    """Per-row (last dimension reduced) scale and zero of ``x`` (rows × cols)."""
    if not 2 <= bits <= 8:
        raise ValueError(f"quantisation bits={bits}; allowed: 2..8")
    maxq = 2**bits - 1
    lo = torch.clamp(x.min(dim=-1).values, max=0)
    hi = torch.clamp(x.max(dim=-1).values, min=0)
    if sym:
        hi = torch.maximum(lo.abs(), hi)
        lo = -hi
    both0 = (lo == 0) & (hi == 0)
    lo, hi = lo.clone(), hi.clone()
    lo[both0], hi[both0] = -1, 1
    scale = (hi - lo) / maxq
    zero = torch.full_like(scale, (maxq + 1) / 2) if sym else torch.round(-lo / scale)
    return scale.unsqueeze(-1), zero.unsqueeze(-1)


def fake_quant(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    q = torch.clamp(torch.round(x / scale) + zero, 0, 2**bits - 1)
    return scale * (q - zero)


def check_group(group_size: int) -> int:
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"quantisation group_size={group_size!r} must be a positive integer")
    return group_size


def rtn(W: torch.Tensor, bits: int, group_size: int, sym: bool = False) -> torch.Tensor:
    """Round-to-nearest, per row and per group of ``group_size`` input columns
    (the last group is shorter when ``group_size`` does not divide the columns)."""
    check_group(group_size)
    out = torch.empty_like(W)
    for c in range(0, W.shape[1], group_size):
        g = W[:, c : c + group_size]
        scale, zero = params(g, bits, sym)
        out[:, c : c + group_size] = fake_quant(g, scale, zero, bits)
    return out


def avg_bits(bits: int, group_size: int) -> float:
    """Bits per weight with a 16-bit scale and a 16-bit zero per group (the paper's bits + 32/group)."""
    return bits + 32 / group_size

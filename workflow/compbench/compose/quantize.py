"""Uniform (round-to-nearest) weight quantisation, shared by GPTQ and AWQ.

Asymmetric min-max (the GPTQ reference's ``Quantizer`` with ``sym=False``): for a
group of weights x, scale = (max(x, 0) − min(x, 0)) / (2^b − 1), zero =
round(−min(x, 0) / scale), q = clamp(round(x / scale) + zero, 0, 2^b − 1),
x̂ = scale · (q − zero). Symmetric: scale = 2·max|x| / (2^b − 1), zero = (2^b − 1 + 1) / 2.
The range always contains 0 (as the reference); an all-zero group gets scale 1.

:class:`Codes` holds what a deployment stores of a quantised matrix (integer codes
plus a scale and a zero per row and group); ``dequantise()`` gives back exactly the
weights the fake-quantised model computes with (the same float operations), so the
GPTQ / AWQ / RTN weights of this module and their stored codes (the quant line,
:mod:`compbench.quant.variant`) agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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


def quant_codes(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer codes (as floats) of ``x``: clamp(round(x / scale) + zero, 0, 2^b − 1)."""
    return torch.clamp(torch.round(x / scale) + zero, 0, 2**bits - 1)


def dequant(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    return scale * (q - zero)


def fake_quant(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    return dequant(quant_codes(x, scale, zero, bits), scale, zero)


@dataclass(frozen=True)
class Codes:
    """A matrix (rows × cols) quantised group-wise: ``codes`` (uint8, each in
    [0, 2^bits − 1]), and per row and group of ``group_size`` columns (the last group
    may be shorter) a ``scale`` and a ``zero`` (rows × groups, floats; the zero is an
    integer code). Weight = scale · (code − zero)."""

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    group_size: int

    def _per_column(self, t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(self.group_size, dim=1)[:, : self.codes.shape[1]]

    def dequantise(self) -> torch.Tensor:
        s = self._per_column(self.scale)
        return dequant(self.codes.to(s.dtype), s, self._per_column(self.zero))

    def to(self, device) -> "Codes":
        return replace(self, codes=self.codes.to(device), scale=self.scale.to(device), zero=self.zero.to(device))


def check_group(group_size: int) -> int:
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"quantisation group_size={group_size!r} must be a positive integer")
    return group_size


def rtn_codes(W: torch.Tensor, bits: int, group_size: int, sym: bool = False) -> Codes:
    """Round-to-nearest, per row and per group of ``group_size`` input columns
    (the last group is shorter when ``group_size`` does not divide the columns)."""
    check_group(group_size)
    codes = torch.empty(W.shape, dtype=torch.uint8, device=W.device)
    scales, zeros = [], []
    for c in range(0, W.shape[1], group_size):
        g = W[:, c : c + group_size]
        scale, zero = params(g, bits, sym)
        codes[:, c : c + group_size] = quant_codes(g, scale, zero, bits).to(torch.uint8)
        scales.append(scale)
        zeros.append(zero)
    return Codes(codes, torch.cat(scales, 1), torch.cat(zeros, 1), bits, group_size)


def rtn(W: torch.Tensor, bits: int, group_size: int, sym: bool = False) -> torch.Tensor:
    """The weights of :func:`rtn_codes` (what the model computes with)."""
    return rtn_codes(W, bits, group_size, sym).dequantise()


def avg_bits(bits: int, group_size: int) -> float:
    """Bits per weight with a 16-bit scale and a 16-bit zero per group (the paper's bits + 32/group)."""
    return bits + 32 / group_size

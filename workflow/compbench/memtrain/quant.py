"""Group-wise asymmetric integer quantisation, as Q-GaLore uses it.

Reference: VITA-Group/Q-GaLore, ``q_galore_torch/utils/quantization.py``
(``_quantize_tensor_int8``), ``q_galore_adamw8bit.py`` (``_quantize``,
``_quantize_stochastic_round``, ``_dequantize``) and ``q_galore_projector.py``
(``_quantize``, the INT4 projection). For a group ``w`` of ``group_size`` values
and ``b`` bits (Q-GaLore §3.2, Eq. 2-3 of the paper)::

    s = max(max(w) - min(w), 1e-5) / (2^b - 1)         # scale
    z = clamp(-round(min(w) / s), 0, 2^b - 1)            # zero point
    q = clamp(round(w / s) + z, 0, 2^b - 1)              # nearest rounding
    w' = (q - z) * s                                      # dequantise

Stochastic rounding (Q-GaLore Eq. 4, ``_quantize_stochastic_round``) replaces
``round(w / s)`` by ``floor(w / s) + Bernoulli(frac(w / s))``, so that
``E[w'] = w`` for every value inside the representable range: small weight
updates, each far below one quantisation step, still accumulate in expectation.

Differences from the reference, all in how bytes are held, none in values:
a tensor whose size is not a multiple of ``group_size`` is padded by repeating
its last value (min/max unchanged) instead of asserting; INT4 codes are packed
two per byte (the reference keeps one 4-bit code per uint8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class QTensor:
    """Codes (uint8; INT4 codes packed two per byte when ``packed``), per-group scales and zero points."""

    codes: torch.Tensor
    scales: torch.Tensor
    zeros: torch.Tensor
    shape: tuple
    bits: int
    group_size: int
    packed: bool = False

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        return dequantize(self, dtype)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"codes": self.codes, "scales": self.scales, "zeros": self.zeros}

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors().values())


def _groups(w: torch.Tensor, group_size: int) -> torch.Tensor:
    flat = w.detach().reshape(-1)
    if group_size <= 0:
        group_size = flat.numel()
    pad = (-flat.numel()) % group_size
    if pad:
        flat = torch.cat([flat, flat[-1:].expand(pad)])  # repeating the last value keeps min and max
    return flat.view(-1, group_size)


def _check_bits(bits: int) -> None:
    if bits not in (2, 4, 8):
        raise ValueError(f"quantisation bits={bits} not supported; allowed: 2, 4, 8")


def scales_zeros(g: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group scale and zero point (Q-GaLore ``_quantize``: min-max, asymmetric)."""
    max_int = 2**bits - 1
    mx = g.amax(dim=1, keepdim=True)
    mn = g.amin(dim=1, keepdim=True)
    s = (mx - mn).clamp(min=1e-5) / max_int
    z = (-torch.round(mn / s)).clamp_(0, max_int)
    return s, z


def quantize(
    w: torch.Tensor,
    bits: int = 8,
    group_size: int = 256,
    stochastic: bool = False,
    generator: torch.Generator | None = None,
    pack: bool | None = None,
) -> QTensor:
    """Quantise ``w`` group-wise; stochastic rounding when ``stochastic`` (seeded by ``generator``)."""
    _check_bits(bits)
    if not torch.isfinite(w).all():
        raise ValueError("cannot quantise a tensor with NaN or inf values")
    g = _groups(w.float(), group_size)
    s, z = scales_zeros(g, bits)
    x = g / s
    if stochastic:
        lo = torch.floor(x)
        u = torch.rand(x.shape, generator=generator, device="cpu").to(x.device) if generator is not None else torch.rand_like(x)
        x = torch.where(u < (x - lo), lo + 1, lo)
    else:
        x = torch.round(x)
    q = torch.clamp(x + z, 0, 2**bits - 1).to(torch.uint8)
    pack = bits == 4 if pack is None else pack
    codes = pack_int4(q.reshape(-1)) if pack else q.reshape(-1)
    return QTensor(codes, s, z, tuple(w.shape), bits, g.size(1), packed=pack)


def dequantize(q: QTensor, dtype=torch.float32) -> torch.Tensor:
    n = 1
    for d in q.shape:
        n *= d
    codes = unpack_int4(q.codes, q.scales.size(0) * q.group_size) if q.packed else q.codes
    g = codes.view(-1, q.group_size).to(dtype)
    w = (g - q.zeros.to(dtype)) * q.scales.to(dtype)
    return w.reshape(-1)[:n].reshape(q.shape)


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte: element 2i in the low nibble, 2i+1 in the high nibble."""
    c = codes.reshape(-1).to(torch.uint8)
    if c.numel() and int(c.max()) > 15:
        raise ValueError(f"INT4 code {int(c.max())} out of range 0..15")
    if c.numel() % 2:
        c = torch.cat([c, c.new_zeros(1)])
    c = c.view(-1, 2)
    return c[:, 0] | (c[:, 1] << 4)


def unpack_int4(packed: torch.Tensor, n: int) -> torch.Tensor:
    if packed.dtype != torch.uint8 or packed.numel() * 2 < n or packed.numel() * 2 - n > 1:
        raise ValueError(f"packed INT4 buffer of {packed.numel()} bytes ({packed.dtype}) cannot hold {n} codes")
    out = torch.stack([packed & 0x0F, packed >> 4], dim=1).reshape(-1)
    return out[:n]

"""The registry of weight-only quantisation methods (:data:`QUANTISERS`) of the quant line.

A method is one module in this package, decorated with ``@register``, plus one
import line in :mod:`compbench.quant.methods`. Its function is called as
``fn(model, calib_ids, device, bits, group_size, keep)``: it quantises every decoder
linear of ``model`` in place (the weights become their dequantised values, as the
methods' papers evaluate them) and returns ``(quantised, info)``: name ->
:class:`Quantised` (on the CPU) and a dict of facts recorded with the variant.
``keep`` (name -> boolean mask) is given for a pruned model: the method must keep
pruned weights at exactly zero (their code is the zero code).

The algorithms are the composability line's (``compbench.compose.quantize``,
``compose/interventions/gptq.py``, ``awq.py``): one implementation, two users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from compbench.compose.quantize import Codes
from compbench.registry import Registry


@dataclass(frozen=True)
class Quantised:
    """One linear's stored form: group-wise codes, and AWQ's per-input-channel scale
    ``smooth`` (s of W·diag(s), kept because each linear has its own; weight = dequant / s)."""

    codes: Codes
    smooth: torch.Tensor | None = None

    def weight(self) -> torch.Tensor:
        w = self.codes.dequantise()
        return w if self.smooth is None else w / self.smooth


@dataclass(frozen=True)
class Quantiser:
    name: str
    fn: Callable
    needs_calibration: bool


QUANTISERS: Registry[Quantiser] = Registry("quantisation method")


def register(name: str, needs_calibration: bool = False):
    def deco(fn):
        QUANTISERS.register(name)(Quantiser(name, fn, needs_calibration))
        return fn

    return deco

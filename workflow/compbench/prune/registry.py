"""The registry of pruning methods (:data:`PRUNERS`) and what every method shares.

A method is one module in this package, decorated with ``@register``, plus one
import line in :mod:`compbench.prune.methods` (the list of methods). A
method gets one weight matrix ``W`` (out × in), the statistics of the layer's
inputs (:class:`compbench.calibration.LayerStats`, or ``None`` when
``needs_calibration`` is false) and a :class:`Pattern` (an unstructured ratio or
N:M), and returns ``(keep, new_weight)``: a boolean mask of the weights kept,
and the updated weight if the method changes values (SparseGPT), else ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from compbench.registry import Registry

PRUNERS: Registry = Registry("pruning method")


@dataclass(frozen=True)
class Pattern:
    """Unstructured sparsity ``ratio`` in [0, 1), or N:M (``n`` zeros in every ``m`` consecutive inputs of a row)."""

    ratio: float | None = None
    n: int | None = None
    m: int | None = None

    def __post_init__(self):
        if self.n is None:
            if self.ratio is None or not 0 <= self.ratio < 1:
                raise ValueError(f"sparsity ratio {self.ratio!r} must be in [0, 1)")
        elif not (isinstance(self.n, int) and isinstance(self.m, int) and 0 < self.n < self.m):
            raise ValueError(f"N:M pattern {self.n}:{self.m} needs integers 0 < N < M")

    @property
    def is_nm(self) -> bool:
        return self.n is not None

    def label(self) -> str:
        return f"{self.n}:{self.m}" if self.is_nm else f"{self.ratio:g}"


@dataclass(frozen=True)
class Method:
    fn: Callable
    needs_calibration: bool
    needs_hessian: bool
    changes_values: bool


def register(name: str, needs_calibration: bool, needs_hessian: bool = False, changes_values: bool = False):
    def deco(fn):
        PRUNERS.register(name)(Method(fn, needs_calibration, needs_hessian, changes_values))
        return fn

    return deco


def nm_prune_mask(metric: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Within every group of ``m`` consecutive inputs of each row, mark the ``n``
    smallest ``metric`` entries as pruned (True = pruned), as Wanda's N:M code does."""
    rows, cols = metric.shape
    if cols % m:
        raise ValueError(f"N:M {n}:{m} needs the input dimension ({cols}) to be a multiple of {m}")
    groups = metric.reshape(rows, cols // m, m)
    idx = torch.topk(groups, n, dim=-1, largest=False).indices
    pruned = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, idx, True)
    return pruned.reshape(rows, cols)

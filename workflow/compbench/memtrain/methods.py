"""The training variants (one import line each) and the entry points that build them.

Every variant registers itself in :data:`compbench.memtrain.registry.VARIANTS` when
its module is imported.
"""

from __future__ import annotations

from torch import nn

from compbench.memtrain import adamw, galore_variant, lora, qgalore_variant  # noqa: F401  (registration: one line per variant)
from compbench.memtrain.registry import VARIANTS, Context, Setup  # noqa: F401


def build(name: str, model: nn.Module, hyper: dict, ctx: Context) -> Setup:
    return VARIANTS.get(name)(model, dict(hyper or {}), ctx)


def names() -> list[str]:
    return VARIANTS.names()

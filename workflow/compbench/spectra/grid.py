"""The weight-spectra line's final files (torch-free). Its per-model outputs feed the
pruning allocations (AlphaPruning) and the low-rank line (singular values)."""

from __future__ import annotations

from compbench import lines


def targets(config: dict) -> list[str]:
    return lines.per_model(config, "figures/spectra-alpha-{model}.png", "figures/spectra-esd-{model}.png")

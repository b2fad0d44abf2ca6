"""The weight-spectra line's final files (torch-free). Its per-model outputs feed the
pruning allocations (AlphaPruning) and the low-rank line (singular values)."""

from __future__ import annotations

from compbench.lines import RESULTS


def targets(config: dict) -> list[str]:
    return [f"{RESULTS}/figures/spectra-{kind}-{m}.png" for m in config.get("models", {}) for kind in ("alpha", "esd")]

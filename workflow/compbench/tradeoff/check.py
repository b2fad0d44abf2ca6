"""Cross-field checks of the `tradeoff` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError


def check(config: dict) -> None:
    t = config["tradeoff"]
    datasets = config["evaluation"]["perplexity"]["datasets"]
    if t.get("dataset") and t["dataset"] not in datasets:
        raise ConfigError(
            f"tradeoff.dataset={t['dataset']!r} is not evaluated; allowed: {', '.join(datasets)} (evaluation.perplexity.datasets)"
        )
    if t.get("zeroshot") and "calibration_study" not in config:
        raise ConfigError(
            "tradeoff.zeroshot=true needs the zero-shot tasks of calibration_study.lm_eval, and there is no calibration_study section; "
            "allowed: false, or add that section"
        )

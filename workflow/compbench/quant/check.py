"""Cross-field checks of the `quant` config section (after schema validation)."""

from __future__ import annotations

from compbench import lines
from compbench.config import ConfigError, check_seq_len


def pruned_variants(config: dict) -> list[str]:
    """Variants a composition can quantise: those of the active lines that store masked (pruned) models."""
    out = []
    for line in lines.active(config):
        if "masked" in line.variant_kinds:
            for model in config.get("models", {}):
                out += [v for v in line.grid.variants(config, model) if v not in out]
    return out


def check(config: dict) -> None:
    q = config["quant"]
    comp = q.get("compositions") or {}
    if comp.get("pruned") and not comp.get("methods"):
        from compbench.quant.methods import QUANTISERS  # only for the message

        raise ConfigError(
            f"quant.compositions.pruned={comp['pruned']} but quant.compositions.methods is empty; allowed: one or more of {', '.join(QUANTISERS.names())}"
        )
    if comp.get("methods") and not comp.get("pruned"):
        raise ConfigError("quant.compositions.methods is set but quant.compositions.pruned is empty: name the pruned variants to quantise")
    if comp.get("pruned"):
        allowed = pruned_variants(config)
        for v in comp["pruned"]:
            if v not in allowed:
                raise ConfigError(
                    f"quant.compositions.pruned: {v!r} is no pruned variant of this config; allowed: {', '.join(allowed) or '(none: no pruning section)'}"
                )
    if "calibration" not in q:
        if "pruning" not in config:
            raise ConfigError(
                "quant.calibration is missing and there is no pruning section whose calibration set it could use; add quant.calibration"
            )
        return
    c = q["calibration"]
    if c["source"] == "tiny" and "corpus" not in config:
        raise ConfigError("quant.calibration.source='tiny' needs the `corpus` section")
    check_seq_len(config, "quant.calibration.seq_len", c["seq_len"])

"""Cross-field checks of the `lowrank` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError, check_seq_len


def check(config: dict) -> None:
    lr = config["lowrank"]
    if "spectra" not in config:
        raise ConfigError("lowrank needs the `spectra` section (the singular values come from the spectra stage)")
    ft = lr.get("finetune", {})
    for key in ("allocations", "ratios"):
        extra = [v for v in ft.get(key, []) if v not in lr[key]]
        if extra:
            raise ConfigError(f"lowrank.finetune.{key} has {extra}, not in lowrank.{key}; allowed: {lr[key]}")
    if ft.get("ratios"):
        for key, registry in (("modes", "full, lrc, lora"), ("allocations", "uniform, welore")):
            if not ft.get(key):
                raise ConfigError(
                    f"lowrank.finetune.{key}=[] while lowrank.finetune.ratios={ft['ratios']} asks for fine-tuning; "
                    f"allowed: one or more of {registry} (or ratios: [] for no fine-tuning)"
                )
        check_seq_len(config, "lowrank.finetune.seq_len", ft.get("seq_len"))
    if ft.get("data") == "tiny" and ft.get("ratios") and "corpus" not in config:
        raise ConfigError("lowrank.finetune.data='tiny' needs the `corpus` section")

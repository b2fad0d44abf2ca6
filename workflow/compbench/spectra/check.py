"""Cross-field checks of the `spectra` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError


def check(config: dict) -> None:
    sp = config["spectra"]
    if sp.get("default_rule") not in sp.get("rules", []):
        raise ConfigError(
            f"spectra.default_rule={sp.get('default_rule')!r} is not among spectra.rules; allowed: {', '.join(sp.get('rules', []))}"
        )

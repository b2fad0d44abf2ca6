"""Cross-field checks of the `pruning` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError


def check(config: dict) -> None:
    p = config["pruning"]
    for key in ("methods", "allocations"):
        if not p.get(key):
            raise ConfigError(f"pruning.{key} is empty: the pruning grid is empty; allowed: {', '.join(_allowed(key))}")
    for i, (n, m) in enumerate(p.get("nm", [])):
        if not n < m:
            raise ConfigError(f"pruning.nm[{i}]={[n, m]}: an N:M pattern needs N < M (N zeros in every M weights)")
    if p.get("nm") and not p.get("nm_methods"):
        raise ConfigError("pruning.nm is set but pruning.nm_methods is empty; allowed methods: " + ", ".join(_allowed("methods")))
    if not p["sparsities"] and not p.get("nm"):
        raise ConfigError("pruning.sparsities is empty and no pruning.nm pattern is given: the pruning grid is empty")
    if p.get("calibration", {}).get("source") == "tiny" and "corpus" not in config:
        raise ConfigError("pruning.calibration.source='tiny' needs the `corpus` section")


def _allowed(key: str) -> list[str]:
    """Registered names for a pruning list (imported only when a message needs them)."""
    if key == "allocations":
        from compbench.spectra.allocate import ALLOCATORS

        return ALLOCATORS.names()
    from compbench.prune.methods import PRUNERS

    return PRUNERS.names()

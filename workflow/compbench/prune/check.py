"""Cross-field checks of the `pruning` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError, check_decimals, check_seq_len


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
    check_seq_len(config, "pruning.calibration.seq_len", p.get("calibration", {}).get("seq_len"))
    check_decimals("pruning.sparsities", p["sparsities"])
    check_decimals("pruning.alpha_sweep.sparsities", p.get("alpha_sweep", {}).get("sparsities", []))
    check_epsilon(p)


def check_epsilon(p: dict) -> None:
    """pruning.epsilon: `default` and prune methods, each a number or {sparsity or `default`: number}."""
    sparsities = [str(s) for s in p["sparsities"]] + [str(s) for s in p.get("alpha_sweep", {}).get("sparsities", [])]
    for key, value in p.get("epsilon", {}).items():
        if key != "default" and key not in p["methods"] and (allowed := ["default", *_allowed("methods")]) and key not in allowed:
            raise ConfigError(
                f"pruning.epsilon.{key}: unknown key {key!r} (neither a pruning method nor default); allowed: {', '.join(allowed)}"
            )
        if isinstance(value, dict):
            for s in value:
                if not isinstance(s, str) or s != "default" and s not in sparsities:
                    raise ConfigError(
                        f"pruning.epsilon.{key}.{s}: {s!r} is not a sparsity of the grid (a quoted key); allowed: default, {', '.join(map(repr, sparsities))}"
                    )


def _allowed(key: str) -> list[str]:
    """Registered names for a pruning list (imported only when a message needs them)."""
    if key == "allocations":
        from compbench.spectra.allocate import ALLOCATORS

        return ALLOCATORS.names()
    from compbench.prune.methods import PRUNERS

    return PRUNERS.names()

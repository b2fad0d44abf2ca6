"""Checks of a config beyond what the JSON schema can express.

The Snakefile calls :func:`check` right after schema validation, so a bad config
is refused before any job runs, with a message naming the key and what is allowed.
"""

from __future__ import annotations


class ConfigError(ValueError):
    pass


# Further checks, one function per stage: fn(config) raising ConfigError.
CHECKS: list = []


def check(config: dict) -> None:
    resources = config.get("resources", {})
    for name, spec in config.get("models", {}).items():
        size = spec.get("size")
        if size not in resources:
            raise ConfigError(
                f"models.{name}.size={size!r} names no resource class; allowed: {', '.join(sorted(resources)) or '(none defined)'}"
            )
        if spec.get("source") == "tiny":
            for section in ("corpus", "tokenizer", "tiny_model", "pretrain"):
                if section not in config:
                    raise ConfigError(f"models.{name} has source 'tiny', which needs the `{section}` section")
    tm = config.get("tiny_model")
    if tm and tm["hidden_size"] % tm["num_heads"]:
        raise ConfigError(
            f"tiny_model.hidden_size={tm['hidden_size']} must be divisible by tiny_model.num_heads={tm['num_heads']}"
        )
    if "tiny" in config.get("evaluation", {}).get("perplexity", {}).get("datasets", []):
        if "corpus" not in config:
            raise ConfigError("evaluation.perplexity.datasets contains 'tiny', which needs the `corpus` section")
    sp = config.get("spectra")
    if sp and sp.get("default_rule") not in sp.get("rules", []):
        raise ConfigError(
            f"spectra.default_rule={sp.get('default_rule')!r} is not among spectra.rules; allowed: {', '.join(sp.get('rules', []))}"
        )
    for extra in CHECKS:
        extra(config)


def _check_pruning(config: dict) -> None:
    p = config.get("pruning")
    if not p:
        return
    for i, (n, m) in enumerate(p.get("nm", [])):
        if not n < m:
            raise ConfigError(f"pruning.nm[{i}]={[n, m]}: an N:M pattern needs N < M (N zeros in every M weights)")
    if p.get("nm") and not p.get("nm_methods"):
        raise ConfigError("pruning.nm is set but pruning.nm_methods is empty; allowed methods: magnitude, wanda, sparsegpt")
    if not p["sparsities"] and not p.get("nm"):
        raise ConfigError("pruning.sparsities is empty and no pruning.nm pattern is given: the pruning grid is empty")
    if p.get("calibration", {}).get("source") == "tiny" and "corpus" not in config:
        raise ConfigError("pruning.calibration.source='tiny' needs the `corpus` section")


CHECKS.append(_check_pruning)


def _check_grids_and_placement(config: dict) -> None:
    """Empty method grids (a line that would silently do nothing) and SLURM
    placement that sbatch would refuse (issue 4)."""
    p = config.get("pruning")
    if p:
        for key, allowed in (("methods", "magnitude, wanda, sparsegpt"), ("allocations", "uniform, owl, alpha")):
            if not p.get(key):
                raise ConfigError(f"pruning.{key} is empty: the pruning grid is empty; allowed: {allowed}")
    for name, cls in config.get("resources", {}).items():
        if cls.get("gpu_model") and cls.get("gpu", 0) < 1:
            raise ConfigError(
                f"resources.{name}.gpu_model={cls['gpu_model']!r} needs resources.{name}.gpu >= 1 (it is {cls.get('gpu', 0)})"
            )


CHECKS.append(_check_grids_and_placement)

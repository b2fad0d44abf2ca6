"""Checks of a config beyond what the JSON schema can express.

The Snakefile calls :func:`check` right after schema validation, so a bad config
is refused before any job runs, with a message naming the key and what is allowed.
The checks of the shared sections are here; each research line's own are in
``compbench/<line>/check.py``, called through :func:`compbench.lines.check`.
"""

from __future__ import annotations

from compbench import sources


class ConfigError(ValueError):
    pass


def check(config: dict) -> None:
    resources = config.get("resources", {})
    for name, spec in config.get("models", {}).items():
        size = spec.get("size")
        if size not in resources:
            raise ConfigError(
                f"models.{name}.size={size!r} names no resource class; allowed: {', '.join(sorted(resources)) or '(none defined)'}"
            )
        problem = sources.check(name, spec, config)
        if problem:
            raise ConfigError(problem)
    tm = config.get("tiny_model")
    if tm and tm["hidden_size"] % tm["num_heads"]:
        raise ConfigError(f"tiny_model.hidden_size={tm['hidden_size']} must be divisible by tiny_model.num_heads={tm['num_heads']}")
    for ds in ("tiny", "natural"):
        if ds in config.get("evaluation", {}).get("perplexity", {}).get("datasets", []) and "corpus" not in config:
            raise ConfigError(f"evaluation.perplexity.datasets contains {ds!r}, which needs the `corpus` section")
    for name, cls in resources.items():
        if cls.get("gpu_model") and cls.get("gpu", 0) < 1:
            raise ConfigError(
                f"resources.{name}.gpu_model={cls['gpu_model']!r} needs resources.{name}.gpu >= 1 (it is {cls.get('gpu', 0)})"
            )
    from compbench.lines import check as check_lines

    check_lines(config)

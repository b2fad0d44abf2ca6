"""The trade-off plane a config asks for (torch-free).

Per model: the dense model and every variant of every active line whose variant
kinds have a storage format (:data:`compbench.tradeoff.storage.FORMATS`: pruned,
low-rank, quantised, pruned then quantised; not memtrain's fine-tuned dense
models), each with its spine perplexity and, with ``tradeoff.zeroshot``, its lm-eval
zero-shot accuracy on the calibration study's tasks.
"""

from __future__ import annotations

from compbench import lines, sources
from compbench.tradeoff.storage import FORMATS


def dataset(config: dict) -> str:
    """The perplexity data set of the front (default: the first evaluation data set)."""
    return config["tradeoff"].get("dataset") or config["evaluation"]["perplexity"]["datasets"][0]


def plane(config: dict, model: str) -> dict[str, tuple[str, str]]:
    """Variant -> (line, directory) of every point on the model's plane."""
    out = {"dense": ("dense", sources.model_dir(config, model))}
    for line in lines.active(config):
        fn = getattr(line.grid, "variants", None)
        if fn is None or not line.variant_kinds or not all(k in FORMATS for k in line.variant_kinds):
            continue
        for name, path in fn(config, model).items():
            out.setdefault(name, (line.name, path))
    return out


def lm_eval_variants(config: dict, model: str) -> list[str]:
    """The plane's variants with ``tradeoff.zeroshot`` (each evaluated zero-shot, compbench.lines.lm_eval_batches), else none."""
    return list(plane(config, model)) if config["tradeoff"].get("zeroshot") else []


def zeroshot_outputs(config: dict, model: str) -> list[str]:
    """The zero-shot tables (lm-eval batches) holding the plane's variants, with ``tradeoff.zeroshot``."""
    names = lm_eval_variants(config, model)
    return lines.lm_eval_outputs(config, model, names) if names else []


def targets(config: dict) -> list[str]:
    return lines.per_model(config, "tables/tradeoff-{model}.csv", "figures/tradeoff-{model}.png")

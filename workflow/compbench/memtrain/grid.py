"""The memory-efficient training runs a config asks for (torch-free).

A run is (regime, base, training variant): fine-tuning each model of
``memtrain.finetune.models`` (default: every model) and pre-training each size of
``memtrain.pretrain.sizes``. Fine-tuned models are variants ``train-<variant>`` of
their base model, evaluated by the spine's perplexity rule.
"""

from __future__ import annotations

from compbench.lines import RESULTS

WILDCARDS = dict(tvariant=r"[a-z_]+")


def regime_variants(config: dict, regime: str) -> list[str]:
    """The regime's own `variants` list, else memtrain.variants."""
    mt = config["memtrain"]
    return mt[regime].get("variants") or mt["variants"]


def finetune_models(config: dict) -> list[str]:
    ft = config.get("memtrain", {}).get("finetune")
    if not ft:
        return []
    return ft.get("models") or list(config["models"])


def pretrain_sizes(config: dict) -> list[str]:
    return list(config.get("memtrain", {}).get("pretrain", {}).get("sizes", {}))


def runs(config: dict) -> list[tuple[str, str, str]]:
    """(regime, base, training variant) of every run."""
    mt = config["memtrain"]
    out = []
    if "finetune" in mt:
        out += [("finetune", m, v) for m in finetune_models(config) for v in regime_variants(config, "finetune")]
    if "pretrain" in mt:
        out += [("pretrain", s, v) for s in mt["pretrain"]["sizes"] for v in regime_variants(config, "pretrain")]
    return out


def job_settings(config: dict, regime: str, base: str, variant: str) -> dict:
    """The part of the memtrain section one run reads (its params): the regime's recipe
    (its own size only; the C4 document counts only for C4 data), the variant's learning
    rate and the hyper-parameters of its method (ablations read their base's, as
    memtrain.recipe.hyper_for / lr_for do), so a key of another method reruns nothing."""
    mt = config["memtrain"]
    rg = {k: v for k, v in mt[regime].items() if k not in ("variants", "models", "sizes")}
    if rg.get("data", "tiny") != "c4":
        rg = {k: v for k, v in rg.items() if k not in ("n_documents", "eval_documents")}
    if regime == "pretrain":
        rg["sizes"] = {base: mt[regime]["sizes"][base]}
    family = variant.split("_")[0]
    lr_key = next((k for k in (variant, family, "default") if k in mt["lr"]), None)
    hyper_key = variant if variant in mt["hyper"] else family
    return {
        regime: rg,
        "lr": {lr_key: mt["lr"][lr_key]} if lr_key else {},
        "hyper": {hyper_key: mt["hyper"][hyper_key]} if hyper_key in mt["hyper"] else {},
        **{k: mt[k] for k in ("betas", "eps", "weight_decay")},
    }


def run_dir(regime: str, base: str, variant: str) -> str:
    return f"{RESULTS}/memtrain/{regime}/{base}/{variant}"


def variants(config: dict, model: str) -> dict[str, str]:
    if model not in finetune_models(config):
        return {}
    return {f"train-{v}": f"{RESULTS}/variants/{model}/train-{v}" for v in regime_variants(config, "finetune")}


def targets(config: dict) -> list[str]:
    return [
        f"{RESULTS}/tables/memtrain.csv",
        f"{RESULTS}/figures/memtrain-memory.png",
        f"{RESULTS}/figures/memtrain-curves.png",
        f"{RESULTS}/figures/memtrain-svd.png",
    ]

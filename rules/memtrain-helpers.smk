# Helpers of the memory-efficient training line (rules/memtrain.smk); a separate
# file, included before it (sorted names), so that no Snakefile mixes rules and functions.


def memtrain_cfg():
    return config["memtrain"]


def memtrain_runs():
    """(regime, base, training variant) of every run."""
    mt = memtrain_cfg()
    out = []
    if "finetune" in mt:
        out += [("finetune", m, v) for m in memtrain_finetune_models() for v in regime_variants("finetune")]
    if "pretrain" in mt:
        out += [("pretrain", s, v) for s in mt["pretrain"]["sizes"] for v in regime_variants("pretrain")]
    return out


def regime_variants(regime):
    """The regime's own `variants` list, else memtrain.variants."""
    mt = memtrain_cfg()
    return mt[regime].get("variants") or mt["variants"]


def memtrain_finetune_models():
    ft = memtrain_cfg().get("finetune")
    if not ft:
        return []
    return ft.get("models") or list(config["models"])


def memtrain_variants(model):
    """Fine-tuned models are variants of their base model, evaluated by the spine's perplexity rule."""
    if model not in memtrain_finetune_models():
        return {}
    return {f"train-{v}": f"{RESULTS}/variants/{model}/train-{v}" for v in regime_variants("finetune")}


def memtrain_run_dir(regime, base, v):
    return f"{RESULTS}/memtrain/{regime}/{base}/{v}"


if "memtrain" in config:
    VARIANT_PROVIDERS.append(memtrain_variants)
    FINAL.append(
        lambda: [f"{RESULTS}/tables/memtrain.csv", f"{RESULTS}/figures/memtrain-memory.png",
                 f"{RESULTS}/figures/memtrain-curves.png", f"{RESULTS}/figures/memtrain-svd.png"]
    )


MEMTRAIN_WC = dict(tvariant=r"[a-z_]+")

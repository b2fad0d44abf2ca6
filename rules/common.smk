# Helpers and input functions shared by the rules. No rule lives here.
import re
import os
from pathlib import Path

PKG_DIR = os.path.join(workflow.basedir, "workflow", "compbench")
RESULTS = "results"


def pkg(*modules):
    """Package sources a job depends on. Snakemake does not track imports, so an
    edit of one of these modules reruns exactly the jobs that list it."""
    base = ["__init__", "artifacts", "provenance", "runlog", "device", "registry"]
    paths = []
    for m in dict.fromkeys(base + list(modules)):
        p = Path(PKG_DIR, *m.split("."))
        paths.append(str(p / "__init__.py" if p.is_dir() else p.with_suffix(".py")))
    return paths


def canon(value):
    """A copy with every dict's keys sorted. Snakemake compares params by value
    *and order*, so a reordered config file would otherwise rerun jobs."""
    if isinstance(value, dict):
        return {k: canon(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canon(v) for v in value]
    return value


def cfg(*keys, default=None):
    """A config section for `params:`, canonicalised (see canon)."""
    node = config
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return default
        node = node[k]
    return canon(node)


def models_of(source):
    return [m for m, spec in config["models"].items() if spec["source"] == source]


def alternation(names):
    """A wildcard constraint matching exactly the given names (or nothing)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


def model_spec(wildcards):
    return cfg("models", wildcards.model)


def res(key):
    """A resource taken from the model's size class in config["resources"]."""

    def get(wildcards, attempt=1):
        value = config["resources"][model_spec(wildcards)["size"]].get(key)
        if key in ("mem_mb", "runtime") and value is not None:
            return value * attempt  # a retry gets more
        return value

    return get


def model_threads(wildcards):
    return config["resources"][model_spec(wildcards)["size"]]["threads"]


def model_dir(model):
    return f"{RESULTS}/models/{model}"


def corpus_files(split):
    return expand(f"{RESULTS}/corpus/{{source}}/{split}.txt", source=config["corpus"]["sources"]) if "corpus" in config else []


# Variants of a model that every evaluation covers. A method line appends a
# provider: model name -> {variant name: artifact directory}. The dense variant
# is the model directory itself.
VARIANT_PROVIDERS = [lambda model: {"dense": model_dir(model)}]


def variants_of(model):
    out = {}
    for provider in VARIANT_PROVIDERS:
        out.update(provider(model))
    return out


def variant_input(wildcards):
    known = variants_of(wildcards.model)
    if wildcards.variant not in known:
        raise ValueError(f"unknown variant {wildcards.variant!r} of model {wildcards.model!r}; allowed: {', '.join(known)}")
    return known[wildcards.variant]


def perplexity_outputs():
    return [
        f"{RESULTS}/eval/{m}/{v}/perplexity-{d}.csv"
        for m in config["models"]
        for v in variants_of(m)
        for d in config["evaluation"]["perplexity"]["datasets"]
    ]


# Final targets of `rule all`. Every stage file appends its figures and tables
# to FINAL (a list of paths, or callables returning lists, evaluated at the end).
FINAL = [
    lambda: [f"{RESULTS}/tables/perplexity.csv", f"{RESULTS}/figures/perplexity.png"],
    lambda: expand(f"{RESULTS}/figures/pretrain-{{model}}.png", model=models_of("tiny")),
]


def final_outputs():
    out = []
    for item in FINAL:
        out += item() if callable(item) else [item]
    return out


# Speech line (rules/speech.smk): config section, runs, results folder.
def speech_cfg():
    return config["speech"]


def speech_runs():
    from compbench.speech.grid import runs

    return runs(config["speech"]) if "speech" in config else {}


def speech_dir():
    return f"{RESULTS}/speech/{speech_cfg()['corpus']['name']}"

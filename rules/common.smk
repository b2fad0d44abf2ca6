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
    # (a config without language models, e.g. the speech line alone, has no perplexity table)
    lambda: [f"{RESULTS}/tables/perplexity.csv", f"{RESULTS}/figures/perplexity.png"] if config["models"] else [],
    lambda: expand(f"{RESULTS}/figures/pretrain-{{model}}.png", model=models_of("tiny")),
]


def final_outputs():
    out = []
    for item in FINAL:
        out += item() if callable(item) else [item]
    return out


# --- SLURM placement (profiles/slurm, README "Running on a SLURM cluster") ---
# sbatch's partition (-p), account (-A) and GPU model (--gpus=<model>:<n>) of a
# job come from config, never from the rules: for a job on a model (a {model}
# wildcard), from that model's resource class `resources.<size>`; otherwise,
# and where the class does not say, from the `slurm` section. A missing value
# is no resource at all (the cluster's default). gpu_model is added only to
# jobs whose `gpu` resource is > 0 (a constant, or the class's via res("gpu")).
SLURM_KEYS = {"slurm_partition": "partition", "slurm_account": "account", "gpu_model": None}


def slurm_placement(key, rule_gpu=None):
    def get(wildcards):
        spec = config["models"].get(getattr(wildcards, "model", None), None)
        cls = config["resources"].get(spec["size"], {}) if spec else {}
        if key == "gpu_model":
            gpu = rule_gpu if rule_gpu is not None else cls.get("gpu", 0)
            return cls.get("gpu_model") if gpu > 0 else None
        return cls.get(key, config.get("slurm", {}).get(SLURM_KEYS[key]))

    return get


def apply_slurm_placement():
    """Called by the Snakefile once every rule is defined. A value set by the
    rule itself, by --set-resources or by --default-resources wins."""
    for r in workflow.rules:
        for key in SLURM_KEYS:
            if key in r.resources:
                continue
            if key == "gpu_model":
                if "gpu" not in r.resources:
                    continue
                raw = r.resources["gpu"].raw  # an int, or None for a function such as res("gpu")
                r.resources[key] = slurm_placement(key, rule_gpu=raw if isinstance(raw, int) else None)
            else:
                r.resources[key] = slurm_placement(key)


# Speech line (rules/speech.smk): config section, runs, results folder.
def speech_cfg():
    return config["speech"]


def speech_runs():
    from compbench.speech.grid import runs

    return runs(config["speech"]) if "speech" in config else {}


def speech_dir():
    return f"{RESULTS}/speech/{speech_cfg()['corpus']['name']}"

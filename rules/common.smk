# Helpers and input functions shared by the rules. No rule lives here; grids
# (which jobs a config asks for) come from compbench.<line>.grid.
import re
import os
from pathlib import Path

from compbench import deps, lines, sources
from compbench.lines import RESULTS

SCRIPTS = os.path.join(workflow.basedir, "workflow", "scripts")


def code(script, skip=(), extra=()):
    """Package sources a job of this script depends on: what the script imports,
    transitively (compbench.deps reads the import graph once per parse). Snakemake
    does not track imports; as inputs, an edit of a module reruns exactly the
    jobs whose script reaches it. Paths inside the working directory are relative to
    it, so a run folder moved or copied with its sources (rsync to a cluster, a new
    checkout path) plans nothing; absolute paths would read as changed inputs."""
    here = os.getcwd()
    return [
        os.path.relpath(p, here) if os.path.commonpath([here, os.path.abspath(p)]) == here else p
        for p in deps.script_code(os.path.join(SCRIPTS, f"{script}.py"), skip=skip, extra=extra)
    ]


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


def models_made_by(rule):
    """The models whose directory the given rule makes (compbench.sources names the making rule of each source)."""
    return sources.models_made_by(config, rule)


def alternation(names):
    """A wildcard constraint matching exactly the given names (or nothing)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


def model_spec(wildcards):
    return cfg("models", wildcards.model)


def prune_dtype(wildcards):
    """The pruning line's model dtype (models.<name>.prune_dtype, default float32): a param of
    its own, so that other changes to the model's spec do not rerun the pruning jobs."""
    return model_spec(wildcards).get("prune_dtype") or "float32"


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


def train_threads(wildcards):
    """Pretraining's threads: the size class's `train_threads`, else its `threads`."""
    cls = config["resources"][model_spec(wildcards)["size"]]
    return cls.get("train_threads", cls["threads"])


def model_dir(model):
    """results/models/<model>, or the user's own directory (a `local` source, referenced, not copied)."""
    return sources.model_dir(config, model)


def model_source_inputs(wildcards):
    """Local files a model's build reads (a GGUF given by path), so that a new file rebuilds it."""
    return sources.get(config["models"][wildcards.model]).inputs(config["models"][wildcards.model])


def corpus_files(split):
    return expand(f"{RESULTS}/corpus/{{source}}/{split}.txt", source=config["corpus"]["sources"]) if "corpus" in config else []


def batch_code(script):
    """Code of a job that evaluates a batch of variants (perplexity, lm-eval): its script's, plus
    the modules of the variant kinds of the batch's line (compbench.lines.perplexity_batches), so an
    edit of prune/masked.py reruns the evaluations of pruned variants only."""

    def get(wildcards):
        line = lines.perplexity_batch_line(wildcards.batch)
        return code(script, extra=sorted(set(line.variant_kinds.values())) if line else ())

    return get


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

"""Bad input: every bad config is refused before any job runs, with the key named.

The in-process tests run exactly what the Snakefile runs first (schema
validation with defaults, then compbench.config.check); the end-to-end tests
run Snakemake itself on a workdir holding a finished result and check that
nothing ran and nothing was touched.
"""

import copy
import os
import time

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from compbench.config import ConfigError, check
from conftest import ROOT, copy_repo, snakemake

SMOKE = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
SCHEMA = str(ROOT / "config" / "schema.yaml")


def load(cfg: dict) -> dict:
    """What the Snakefile does with a config before building the DAG."""
    cfg = copy.deepcopy(cfg)
    validate(cfg, SCHEMA, set_default=True)
    check(cfg)
    return cfg


def edit(path: str, value):
    """A copy of the smoke config with `path` (a.b.c) set to value (DELETE removes it)."""
    cfg = copy.deepcopy(SMOKE)
    *parents, last = path.split(".")
    node = cfg
    for k in parents:
        node = node.setdefault(k, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return cfg


DELETE = object()

# (what is wrong, config, words the message must contain: the key, and the allowed values where there is a list)
BAD = [
    (
        "unknown pruning method",
        edit("pruning.methods", ["wanda", "sparsegtp"]),
        ["methods", "sparsegtp", "magnitude", "wanda", "sparsegpt"],
    ),
    ("unknown allocation", edit("pruning.allocations", ["alpha", "random"]), ["allocations", "random", "uniform", "owl"]),
    ("sparsity = 1", edit("pruning.sparsities", [0.5, 1.0]), ["sparsities", "1.0"]),
    ("sparsity > 1", edit("pruning.sparsities", [1.5]), ["sparsities", "1.5"]),
    ("sparsity < 0", edit("pruning.sparsities", [-0.1]), ["sparsities", "-0.1"]),
    ("N:M with N = M", edit("pruning.nm", [[4, 4]]), ["pruning.nm", "N < M"]),
    ("N:M with N > M", edit("pruning.nm", [[8, 4]]), ["pruning.nm", "N < M"]),
    ("empty method grid", edit("pruning.methods", []), ["pruning.methods", "empty"]),
    ("empty allocation grid", edit("pruning.allocations", []), ["pruning.allocations", "empty"]),
    (
        "empty sparsity grid",
        {**edit("pruning.sparsities", []), "pruning": {**SMOKE["pruning"], "sparsities": [], "nm": []}},
        ["sparsities", "empty"],
    ),
    ("hf model without id", edit("models.llama", {"source": "hf", "size": "tiny"}), ["llama", "'id' is a required property"]),
    ("no models", edit("models", {}), ["models"]),
    ("unknown model source", edit("models.tiny.source", "ollama"), ["source", "ollama", "tiny", "hf", "gguf", "local"]),
    ("unknown resource class", edit("models.tiny.size", "huge"), ["models.tiny.size", "huge", "tiny"]),
    ("negative calibration samples", edit("pruning.calibration.n_samples", -8), ["n_samples", "-8"]),
    ("zero pretrain steps", edit("pretrain.steps", 0), ["steps", "0"]),
    ("steps of the wrong type", edit("pretrain.steps", "many"), ["steps", "many", "integer"]),
    ("sparsity of the wrong type", edit("pruning.sparsities", ["0.5"]), ["sparsities", "0.5", "number"]),
    ("negative learning rate", edit("pretrain.lr", -0.001), ["lr", "-0.001"]),
    ("tiny vocabulary", edit("tokenizer.vocab_size", 10), ["vocab_size", "10"]),
    ("unknown corpus source", edit("corpus.sources", ["lee", "reddit"]), ["sources", "reddit", "wiki", "lee"]),
    ("unknown evaluation dataset", edit("evaluation.perplexity.datasets", ["ptb"]), ["datasets", "ptb", "wikitext2", "c4"]),
    ("no evaluation dataset", edit("evaluation.perplexity.datasets", []), ["datasets"]),
    ("misspelt section", {**SMOKE, "prunning": SMOKE["pruning"]}, ["prunning"]),
    ("misspelt key", edit("pretrain.step", 10), ["step"]),
    ("negative memory", edit("resources.tiny.mem_mb", -1), ["mem_mb", "-1"]),
    ("heads do not divide width", edit("tiny_model.num_heads", 3), ["tiny_model.hidden_size", "num_heads"]),
    (
        "default rule not fitted",
        edit("spectra.default_rule", "full") | {"spectra": {**SMOKE["spectra"], "rules": ["peak"], "default_rule": "full"}},
        ["spectra.default_rule", "peak"],
    ),
    ("epsilon above 1", edit("pruning.epsilon", {"default": 2}), ["epsilon", "2"]),
    ("unknown device", edit("device", "tpu"), ["device", "tpu", "cpu", "cuda"]),
    ("model name escaping results/", edit("models", {"../evil": {"source": "tiny", "size": "tiny"}}), ["../evil"]),
    ("shell in a partition name", edit("slurm.partition", "gpu; rm -rf ~"), ["partition", "rm -rf"]),
    ("GPU model without a GPU", edit("resources.tiny.gpu_model", "a100"), ["resources.tiny.gpu_model", "gpu"]),
    ("string for trust_remote_code", edit("models.tiny.trust_remote_code", "yes"), ["trust_remote_code", "yes", "boolean"]),
    (
        "unknown intervention method",
        edit("compose.interventions", {**SMOKE["compose"]["interventions"], "rome": {"method": "rome"}}),
        ["rome", "ft", "memit", "rmu"],
    ),
    (
        "unknown intervention setting",
        edit("compose.interventions", {**SMOKE["compose"]["interventions"], "ga": {"method": "ga", "stepz": 3}}),
        ["compose.interventions.ga", "stepz", "steps", "max_loss"],
    ),
    (
        "one category only",
        edit("compose.interventions", {"ft": {"method": "ft"}, "lora": {"method": "lora"}}),
        ["compose.interventions", "edit", "two categories"],
    ),
    (
        "sweep over a non-pruning compressor",
        edit("compose.sweep", {"edits": ["ft"], "compressor": "ga", "sparsities": [0.5]}),
        ["compose.sweep.compressor", "ga", "wanda"],
    ),
    (
        "pruning sparsity 1 in compose",
        edit("compose.interventions", {**SMOKE["compose"]["interventions"], "wanda": {"method": "wanda", "sparsity": 1.0}}),
        ["sparsity", "1.0"],
    ),
    ("knowledge world not in the corpus", edit("corpus.sources", ["lee", "tasks"]), ["compose.data.source", "knowledge", "corpus.sources"]),
]


def test_the_smoke_config_itself_is_accepted():
    load(SMOKE)


@pytest.mark.parametrize("what,cfg,words", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_refused_naming_the_key(what, cfg, words):
    with pytest.raises((WorkflowError, ConfigError)) as e:
        load(cfg)
    msg = str(e.value) + "".join(str(a) for a in getattr(e.value, "args", ()))
    for w in words:
        assert w in msg, f"{what}: {w!r} not in the message:\n{msg}"


def test_at_least_twenty_bad_configs():
    assert len(BAD) >= 20


@pytest.mark.workflow
@pytest.mark.parametrize("what", ["unknown pruning method", "N:M with N = M"])
def test_snakemake_refuses_before_any_job_and_touches_nothing(tmp_path, what):
    cfg = next(c for w, c, _ in BAD if w == what)
    (tmp_path / "wf").mkdir()
    wd = copy_repo(tmp_path / "wf")
    old = wd / "results" / "tables" / "perplexity.csv"
    old.parent.mkdir(parents=True)
    old.write_text("model,variant,dataset,metric,value\ntiny,dense,tiny,perplexity,42\n")
    stamp = time.time() - 3600
    os.utime(old, (stamp, stamp))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(wd, "--configfile", str(tmp_path / "bad.yaml"), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error validating config" in out or "ConfigError" in out, out[-2000:]
    assert "Select jobs to execute" not in out and "rule " not in out.split("Error", 1)[0]
    assert old.stat().st_mtime == stamp and "42" in old.read_text()
    assert sorted(str(p.relative_to(wd)) for p in (wd / "results").rglob("*") if p.is_file()) == ["results/tables/perplexity.csv"]

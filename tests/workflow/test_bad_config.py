"""Bad input: every bad config is refused before any job runs, with one short
message naming the key path, the bad value and what is allowed (issues 4, 20).

The in-process tests run exactly what the Snakefile runs first
(compbench.config.prepare: the config files read again with duplicate keys
refused, the schema with its defaults, then compbench.config.check); the
end-to-end tests run Snakemake itself (and workflow/run.sh, which checks the
config files Snakemake would refuse without naming) on a workdir holding a
finished result and check that nothing ran, nothing was touched and no
traceback was printed.
"""

import copy
import os
import time

import pytest
import yaml

from compbench.config import ConfigError, prepare, read_file
from conftest import ROOT, copy_repo, snakemake

SMOKE = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
SMOKE_TEXT = (ROOT / "config" / "smoke.yaml").read_text()
SCHEMA = str(ROOT / "config" / "schema.yaml")
DELETE = object()


def edit(path: str, value, base=None):
    """A copy of the smoke config with `path` (a.b.c) set to value (DELETE removes it)."""
    cfg = copy.deepcopy(base if base is not None else SMOKE)
    *parents, last = path.split(".")
    node = cfg
    for k in parents:
        node = node.setdefault(k, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return cfg


def edits(*pairs):
    cfg = SMOKE
    for path, value in pairs:
        cfg = edit(path, value, cfg)
    return cfg


def hub(**spec):
    return edit("models.llama", {"source": "hf", "size": "tiny", **spec})


IVS = SMOKE["compose"]["interventions"]
LRSMS = SMOKE["speech"]["variants"]["lrsms"]
TASKS = SMOKE["vision"]["fusion"]["tasks"]

# (what is wrong, a config (dict) or a config file's text (str), the key path, the bad value, what is allowed).
# Each of the three last must appear in the message (the allowed values: every word of the tuple).
BAD = [
    # --- methods, sources, data sets: unknown names ---
    (
        "unknown pruning method",
        edit("pruning.methods", ["wanda", "sparsegtp"]),
        "pruning.methods[1]",
        "sparsegtp",
        ("magnitude", "wanda", "sparsegpt"),
    ),
    ("unknown allocation", edit("pruning.allocations", ["alpha", "random"]), "pruning.allocations[1]", "random", ("uniform", "owl")),
    ("unknown corpus source", edit("corpus.sources", ["lee", "reddit"]), "corpus.sources[1]", "reddit", ("wiki", "lee")),
    (
        "unknown evaluation dataset",
        edit("evaluation.perplexity.datasets", ["ptb"]),
        "evaluation.perplexity.datasets[0]",
        "ptb",
        ("wikitext2", "c4"),
    ),
    ("unknown device", edit("device", "tpu"), "device", "tpu", ("cpu", "cuda")),
    ("unknown device gpu", edit("device", "gpu"), "device", "gpu", ("auto", "cpu", "cuda")),
    ("unknown model source", edit("models.tiny.source", "ollama"), "models.tiny.source", "ollama", ("tiny", "hf", "gguf", "local")),
    ("unknown model dtype", edit("models.tiny.dtype", "fp8"), "models.tiny.dtype", "fp8", ("float32", "bfloat16")),
    ("unknown training variant", edit("memtrain.variants", ["adamw", "sgd"]), "memtrain.variants[1]", "sgd", ("adamw", "galore")),
    (
        "unknown PASS method",
        edit("vision.pass.methods", ["pass", "random"]),
        "vision.pass.methods[1]",
        "random",
        ("pass_noprompt", "l1_uniform"),
    ),
    ("unknown xmin rule", edit("spectra.rules", ["full", "median"]), "spectra.rules[1]", "median", ("mid", "peak")),
    ("unknown lowrank allocation", edit("lowrank.allocations", ["svd"]), "lowrank.allocations[0]", "svd", ("uniform", "welore")),
    (
        "unknown calibration source (study)",
        edit("calibration_study.sources", ["reddit"]),
        "calibration_study.sources[0]",
        "reddit",
        ("c4", "arith"),
    ),
    (
        "unknown calibration format",
        edit("calibration_study.formats", ["raw"]),
        "calibration_study.formats[0]",
        "raw",
        ("zero", "concat", "icl"),
    ),
    (
        "unknown generated lm-eval task",
        edit("calibration_study.lm_eval.tasks", ["cb_nope"]),
        "calibration_study.lm_eval.tasks",
        "cb_nope",
        ("cb_arith",),
    ),
    ("unknown speech corpus source", edit("speech.corpus.source", "timit"), "speech.corpus.source", "timit", ("synthetic", "librispeech")),
    ("unknown speech units", edit("speech.units", "phoneme"), "speech.units", "phoneme", ("word", "char")),
    (
        "unknown intervention method",
        edit("compose.interventions", {**IVS, "rome": {"method": "rome"}}),
        "compose.interventions.rome",
        "rome",
        ("ft", "memit", "rmu"),
    ),
    (
        "compose evaluates an unknown data set",
        edit("compose.eval.perplexity", "ptb"),
        "compose.eval.perplexity",
        "ptb",
        ("tiny", "wikitext2", "c4"),
    ),
    (
        "compose calibrates on an unknown source",
        edit("compose.calibration.source", "reddit"),
        "compose.calibration.source",
        "reddit",
        ("tiny", "c4"),
    ),
    (
        "unknown vision model kind",
        edit("vision.pass.model.kind", "resnet1000"),
        "vision.pass.model.kind",
        "resnet1000",
        ("small_resnet", "resnet18", "vgg16_bn"),
    ),
    (
        "unknown fusion task",
        edit("vision.fusion.tasks", [TASKS[0], {"name": "colour", "source": "generated"}]),
        "vision.fusion.tasks",
        "colour",
        ("animal", "outdoor", "warm"),
    ),
    ("unknown memtrain lr key", edit("memtrain.lr", {"default": 0.003, "sgd": 0.1}), "memtrain.lr", "sgd", ("default", "adamw")),
    # --- numbers out of range ---
    ("sparsity = 1", edit("pruning.sparsities", [0.5, 1.0]), "pruning.sparsities[1]", "1.0", ("< 1",)),
    ("sparsity > 1", edit("pruning.sparsities", [1.5]), "pruning.sparsities[0]", "1.5", ("< 1",)),
    ("sparsity < 0", edit("pruning.sparsities", [-0.1]), "pruning.sparsities[0]", "-0.1", ("> 0",)),
    ("sparsity 0 (no variant)", edit("pruning.sparsities", [0]), "pruning.sparsities[0]", "0", ("> 0",)),
    ("sparsity in exponent notation", edit("pruning.sparsities", [1e-05]), "pruning.sparsities", "1e-05", ("0.<digits>",)),
    (
        "sweep sparsity in exponent notation",
        edit("compose.sweep.sparsities", [1e-05]),
        "compose.sweep.sparsities",
        "1e-05",
        ("0.<digits>",),
    ),
    ("sparsity 0 in the study", edit("calibration_study.sparsities", [0]), "calibration_study.sparsities[0]", "0", ("> 0",)),
    ("N:M with N = M", edit("pruning.nm", [[4, 4]]), "pruning.nm[0]", "[4, 4]", ("N < M",)),
    ("N:M with N > M", edit("pruning.nm", [[8, 4]]), "pruning.nm[0]", "[8, 4]", ("N < M",)),
    ("N:M with one number", edit("pruning.nm", [[2]]), "pruning.nm[0]", "[2]", ("at least 2",)),
    ("negative calibration samples", edit("pruning.calibration.n_samples", -8), "pruning.calibration.n_samples", "-8", (">= 1",)),
    ("zero pretrain steps", edit("pretrain.steps", 0), "pretrain.steps", "0", (">= 1",)),
    ("a billion pretrain steps", edit("pretrain.steps", 10**9), "pretrain.steps", "1000000000", ("<= 10000000",)),
    ("a million batch size", edit("pretrain.batch_size", 10**6), "pretrain.batch_size", "1000000", ("<= 65536",)),
    ("a million speech epochs", edit("speech.train.epochs", 10**6), "speech.train.epochs", "1000000", ("<= 10000",)),
    ("a runtime of 19 years", edit("resources.tiny.runtime", 10**7), "resources.tiny.runtime", "10000000", ("<= 100000",)),
    ("a hypernet batch of one", edit("vision.pass.hypernet.batch_size", 1), "vision.pass.hypernet.batch_size", "1", (">= 2",)),
    ("a huge vocabulary", edit("tokenizer.vocab_size", 10**6), "tokenizer.vocab_size", "1000000", ("<= 200000",)),
    ("tiny vocabulary", edit("tokenizer.vocab_size", 10), "tokenizer.vocab_size", "10", (">= 300",)),
    ("negative learning rate", edit("pretrain.lr", -0.001), "pretrain.lr", "-0.001", ("> 0",)),
    ("negative memory", edit("resources.tiny.mem_mb", -1), "resources.tiny.mem_mb", "-1", (">= 100",)),
    ("epsilon above 1", edit("pruning.epsilon", {"default": 2}), "pruning.epsilon.default", "2", ("<= 1",)),
    ("OWL lambda above 0.5", edit("pruning.owl.lam", 0.9), "pruning.owl.lam", "0.9", ("<= 0.5",)),
    ("validation share above 0.5", edit("corpus.validation", 0.7), "corpus.validation", "0.7", ("< 0.5",)),
    ("zero perplexity batch", edit("evaluation.perplexity.batch_size", 0), "evaluation.perplexity.batch_size", "0", (">= 1",)),
    (
        "zero variants per perplexity job",
        edit("evaluation.perplexity.variants_per_job", 0),
        "evaluation.perplexity.variants_per_job",
        "0",
        (">= 1",),
    ),
    ("a 4-token tiny model", edit("tiny_model.seq_len", 4), "tiny_model.seq_len", "4", (">= 8",)),
    ("a 4-token evaluation cap", edit("models.tiny.max_seq_len", 4), "models.tiny.max_seq_len", "4", (">= 8",)),
    # --- empty grids and missing pieces ---
    ("empty method grid", edit("pruning.methods", []), "pruning.methods", "empty", ("magnitude", "wanda", "sparsegpt")),
    ("empty allocation grid", edit("pruning.allocations", []), "pruning.allocations", "empty", ("uniform", "owl")),
    ("empty sparsity grid", edits(("pruning.sparsities", []), ("pruning.nm", [])), "pruning.sparsities", "empty", ("pruning.nm",)),
    ("N:M without methods", edit("pruning.nm_methods", []), "pruning.nm_methods", "empty", ("wanda", "sparsegpt")),
    ("fine-tuning modes empty", edit("lowrank.finetune.modes", []), "lowrank.finetune.modes", "[]", ("full", "lrc", "lora")),
    (
        "fine-tuning allocations empty",
        edit("lowrank.finetune.allocations", []),
        "lowrank.finetune.allocations",
        "[]",
        ("uniform", "welore"),
    ),
    ("fine-tuning ratio not compressed", edit("lowrank.finetune.ratios", [0.3]), "lowrank.finetune.ratios", "0.3", ("0.5",)),
    ("no evaluation dataset", edit("evaluation.perplexity.datasets", []), "evaluation.perplexity.datasets", "[]", ("at least 1",)),
    ("no xmin rule", edit("spectra.rules", []), "spectra.rules", "[]", ("at least 1",)),
    ("no resource class", edit("resources", {}), "resources", "{}", ("at least 1",)),
    ("hf model without id", hub(), "models.llama", "'source': 'hf'", ("'id' is a required property",)),
    ("hf model id of blanks", hub(id="   "), "models.llama.id", "'   '", ("owner/name",)),
    ("hf model id with a space", hub(id="meta llama/x"), "models.llama.id", "meta llama/x", ("owner/name",)),
    ("unknown resource class", edit("models.tiny.size", "huge"), "models.tiny.size", "huge", ("tiny",)),
    ("GPU model without a GPU", edit("resources.tiny.gpu_model", "a100"), "resources.tiny.gpu_model", "a100", ("gpu >= 1",)),
    (
        "librispeech without data",
        edit("speech.corpus", {"source": "librispeech", "name": "ls"}),
        "speech.corpus.path",
        "librispeech",
        ("hf_id",),
    ),
    (
        "default rule not fitted",
        edit("spectra.default_rule", "full", edit("spectra.rules", ["peak"])),
        "spectra.default_rule",
        "full",
        ("peak",),
    ),
    (
        "knowledge world not in the corpus",
        edit("corpus.sources", ["lee", "tasks"]),
        "compose.data.source",
        "world",
        ("knowledge", "corpus.sources"),
    ),
    ("fusion on an undefined model", edit("vision.fusion.model", "llama"), "vision.fusion.model", "llama", ("tiny",)),
    ("memtrain on an undefined model", edit("memtrain.finetune.models", ["llama"]), "memtrain.finetune.models", "llama", ("tiny",)),
    (
        "memtrain size of an unknown class",
        edit("memtrain.pretrain.sizes.p16.size", "huge"),
        "memtrain.pretrain.sizes.p16.size",
        "huge",
        ("tiny",),
    ),
    # --- combinations that cannot work ---
    ("heads do not divide width", edit("tiny_model.num_heads", 3), "tiny_model.num_heads", "3", ("1, 2, 4, 8",)),
    (
        "memtrain heads do not divide width",
        edit("memtrain.pretrain.sizes.p16.num_heads", 3),
        "memtrain.pretrain.sizes.p16",
        "num_heads=3",
        ("divisible",),
    ),
    ("speech heads do not divide width", edit("speech.model.num_heads", 3), "speech.model.num_heads", "3", ("divisible",)),
    ("even speech kernel", edit("speech.model.conv_kernel", 4), "speech.model.conv_kernel", "4", ("odd",)),
    (
        "no training voice left",
        edit("speech.corpus.held_out_voices", {"dev": 2, "test": 2}),
        "speech.corpus.held_out_voices",
        "dev=2",
        ("training voice",),
    ),
    ("a range with min > max", edit("speech.corpus.speed", [180, 150]), "speech.corpus.speed", "[180, 150]", ("min <= max",)),
    (
        "random_init of an unknown setting",
        edit("speech.variants.lrsms", {**LRSMS, "random_init": ["r25"]}),
        "speech.variants.lrsms.random_init",
        "r25",
        ("r50",),
    ),
    ("two fusion tasks of one name", edit("vision.fusion.tasks", [TASKS[0], TASKS[0]]), "vision.fusion.tasks", "animal", ("distinct",)),
    # --- seeds (issue 22): a non-empty list of distinct non-negative integers ---
    ("no speech seed", edit("speech.seeds", []), "speech.seeds", "[]", ("at least 1",)),
    ("a negative speech seed", edit("speech.seeds", [0, -1]), "speech.seeds[1]", "-1", (">= 0",)),
    ("a repeated speech seed", edit("speech.seeds", [0, 1, 1]), "speech.seeds", "[0, 1, 1]", ("distinct",)),
    ("a speech seed that is no integer", edit("speech.seeds", [0.5]), "speech.seeds[0]", "0.5", ("integer",)),
    ("a speech seed that is no list", edit("speech.seeds", 3), "speech.seeds", "3", ("array",)),
    ("no PASS seed", edit("vision.pass.seeds", []), "vision.pass.seeds", "[]", ("at least 1",)),
    ("a negative PASS seed", edit("vision.pass.seeds", [-2]), "vision.pass.seeds[0]", "-2", (">= 0",)),
    ("a repeated PASS seed", edit("vision.pass.seeds", [2, 2]), "vision.pass.seeds", "[2, 2]", ("distinct",)),
    ("no fusion seed", edit("vision.fusion.seeds", []), "vision.fusion.seeds", "[]", ("at least 1",)),
    ("a negative fusion seed", edit("vision.fusion.seeds", [-1, 0]), "vision.fusion.seeds[0]", "-1", (">= 0",)),
    ("a repeated fusion seed", edit("vision.fusion.seeds", [0, 3, 0]), "vision.fusion.seeds", "[0, 3, 0]", ("distinct",)),
    ("the former single speech seed", edit("speech.train.seed", 1), "speech.train.seed", "'seed'", ("epochs", "specaugment")),
    ("the former single PASS seed", edit("vision.pass.seed", 1), "vision.pass.seed", "'seed'", ("seeds",)),
    (
        "pretrained weights for small_resnet",
        edit("vision.pass.model.weights", "IMAGENET1K_V1"),
        "vision.pass.model.weights",
        "IMAGENET1K_V1",
        ("torchvision",),
    ),
    (
        "calibration windows longer than the model",
        edit("pruning.calibration.seq_len", 128),
        "pruning.calibration.seq_len",
        "128",
        ("<= 64",),
    ),
    ("study windows longer than the model", edit("calibration_study.seq_len", [128]), "calibration_study.seq_len", "128", ("<= 64",)),
    ("compose windows longer than the model", edit("compose.calibration.seq_len", 128), "compose.calibration.seq_len", "128", ("<= 64",)),
    ("fine-tuning windows longer than the model", edit("lowrank.finetune.seq_len", 128), "lowrank.finetune.seq_len", "128", ("<= 64",)),
    (
        "memtrain windows longer than the model",
        edit("memtrain.finetune.seq_len", 128),
        "memtrain.finetune.seq_len",
        "128",
        ("tiny_model.seq_len",),
    ),
    (
        "epsilon of a misspelt method",
        edit("pruning.epsilon", {"default": 0.3, "wandaa": 0.2}),
        "pruning.epsilon.wandaa",
        "wandaa",
        ("magnitude", "wanda", "sparsegpt"),
    ),
    (
        "epsilon for a sparsity not in the grid",
        edit("pruning.epsilon", {"default": 0.3, "wanda": {"0.9": 0.1}}),
        "pruning.epsilon.wanda.0.9",
        "0.9",
        ("'0.7'",),
    ),
    (
        "one category only",
        edit("compose.interventions", {"ft": {"method": "ft"}, "lora": {"method": "lora"}}),
        "compose.interventions",
        "['ft', 'lora']",
        ("edit", "compress", "unlearn"),
    ),
    (
        "unknown intervention setting",
        edit("compose.interventions", {**IVS, "ga": {"method": "ga", "stepz": 3}}),
        "compose.interventions.ga",
        "stepz",
        ("steps", "max_loss"),
    ),
    (
        "sweep over a non-pruning compressor",
        edit("compose.sweep", {"edits": ["ft"], "compressor": "ga", "sparsities": [0.5]}),
        "compose.sweep.compressor",
        "ga",
        ("wanda",),
    ),
    (
        "sweep of a non-edit",
        edit("compose.sweep", {"edits": ["wanda"], "compressor": "wanda", "sparsities": [0.5]}),
        "compose.sweep.edits",
        "wanda",
        ("ft",),
    ),
    (
        "intervention id with __",
        edit("compose.interventions", {**IVS, "a__b": {"method": "ft"}}),
        "compose.interventions",
        "a__b",
        ("letters, digits",),
    ),
    (
        "pruning sparsity 1 in compose",
        edit("compose.interventions", {**IVS, "wanda": {"method": "wanda", "sparsity": 1.0}}),
        "compose.interventions.wanda.sparsity",
        "1.0",
        ("< 1",),
    ),
    # --- types, names and keys ---
    ("steps of the wrong type", edit("pretrain.steps", "many"), "pretrain.steps", "many", ("integer",)),
    ("sparsity of the wrong type", edit("pruning.sparsities", ["0.5"]), "pruning.sparsities[0]", "0.5", ("number",)),
    ("string for trust_remote_code", edit("models.tiny.trust_remote_code", "yes"), "models.tiny.trust_remote_code", "yes", ("boolean",)),
    ("misspelt section", {**SMOKE, "prunning": SMOKE["pruning"]}, "prunning", "prunning", ("pruning", "models", "resources")),
    ("misspelt key", edit("pretrain.step", 10), "pretrain.step", "step", ("steps", "batch_size")),
    ("model name escaping results/", edit("models", {"../evil": {"source": "tiny", "size": "tiny"}}), "models", "../evil", ("A-Za-z0-9",)),
    ("shell in a partition name", edit("slurm.partition", "gpu; rm -rf ~"), "slurm.partition", "rm -rf", ("A-Za-z0-9",)),
    ("speech corpus named ..", edit("speech.corpus.name", ".."), "speech.corpus.name", "'..'", ("A-Za-z0-9_",)),
    ("speech corpus named a/b", edit("speech.corpus.name", "a/b"), "speech.corpus.name", "a/b", ("A-Za-z0-9_",)),
    (
        "lrsms setting named ..",
        edit("speech.variants.lrsms", {**LRSMS, "settings": [{**LRSMS["settings"][0], "name": ".."}]}),
        "speech.variants.lrsms.settings[0].name",
        "'..'",
        ("A-Za-z0-9_",),
    ),
    (
        "fusion task named ..",
        edit("vision.fusion.tasks", [TASKS[0], {"name": "..", "source": "generated"}]),
        "vision.fusion.tasks[1].name",
        "'..'",
        ("A-Za-z0-9_",),
    ),
    (
        "torchvision weights with a path",
        edit("vision.pass.model", {**SMOKE["vision"]["pass"]["model"], "kind": "resnet18", "weights": "../w.pth"}),
        "vision.pass.model.weights",
        "../w.pth",
        ("A-Z0-9_",),
    ),
    # --- quantisation and the trade-off plane ---
    ("unknown quantisation method", edit("quant.methods", ["rtn", "hqq"]), "quant.methods[1]", "hqq", ("awq", "gptq", "rtn")),
    ("quantisation bits above 8", edit("quant.bits", [16]), "quant.bits[0]", "16", ("<= 8",)),
    ("quantisation group of 0 columns", edit("quant.group_sizes", [0]), "quant.group_sizes[0]", "0", (">= 1",)),
    (
        "composition on a variant the config does not make",
        edit("quant.compositions", {"pruned": ["prune-wanda-magic-0.7"], "methods": ["gptq"]}),
        "quant.compositions.pruned",
        "prune-wanda-magic-0.7",
        ("prune-sparsegpt-2of4", "prune-wanda-uniform-0.7"),
    ),
    (
        "composition without a method",
        edit("quant.compositions", {"pruned": ["prune-sparsegpt-2of4"], "methods": []}),
        "quant.compositions.methods",
        "prune-sparsegpt-2of4",
        ("awq", "gptq", "rtn"),
    ),
    (
        "quantisation without calibration data",
        edits(("pruning", DELETE), ("quant.compositions", {})),
        "quant.calibration",
        "missing",
        ("pruning",),
    ),
    ("trade-off front on a data set not evaluated", edit("tradeoff.dataset", "c4"), "tradeoff.dataset", "c4", ("tiny",)),
    (
        "trade-off zero-shot without zero-shot tasks",
        edits(("calibration_study", DELETE), ("quant.compositions", {})),
        "tradeoff.zeroshot",
        "true",
        ("false", "calibration_study"),
    ),
    # --- config files Snakemake reads (the file named in the message) ---
    ("a key given twice", SMOKE_TEXT + "\nmodels:\n  other: {source: tiny, size: tiny}\n", "models", "twice", ("once",)),
    ("a nested key given twice", SMOKE_TEXT.replace("  steps: 30\n", "  steps: 30\n  steps: 31\n", 1), "steps", "twice", ("once",)),
    ("a config file that is a list", "- models\n- resources\n", "bad.yaml", "a list", ("mapping",)),
    ("a config file that is a scalar", "42\n", "bad.yaml", "42", ("mapping",)),
    ("an empty config file", "", "bad.yaml", "empty", ("mapping",)),
    ("a config file of invalid YAML", "models: [tiny\n", "bad.yaml", "not valid YAML", ("mapping",)),
]


def load(cfg, tmp_path) -> dict:
    """What the Snakefile does with a config file before building the DAG."""
    path = tmp_path / "bad.yaml"
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False))
    return prepare(read_file(path), SCHEMA, [path])


def test_the_smoke_config_and_every_shipped_complete_config_are_accepted(tmp_path):
    for name in ("smoke", "config", "spine", "welore_mini") + tuple(p.stem for p in (ROOT / "config").glob("paper_*.yaml")):
        load((ROOT / "config" / f"{name}.yaml").read_text(), tmp_path)


@pytest.mark.parametrize("what,cfg,key,value,allowed", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_refused_naming_key_value_and_allowed(tmp_path, what, cfg, key, value, allowed):
    with pytest.raises(ConfigError) as e:
        load(cfg, tmp_path)
    msg = str(e.value)
    for w in (key, value, *allowed):
        assert w in msg, f"{what}: {w!r} not in the message:\n{msg}"
    assert "Traceback" not in msg and len(msg) < 700 and msg.count("\n") == 0, msg  # one short line, not the schema


def test_at_least_eighty_distinct_bad_configs():
    assert len(BAD) >= 80 and len({b[0] for b in BAD}) == len(BAD)


def test_defaults_are_filled_and_not_shared_between_configs(tmp_path):
    a, b = load(SMOKE, tmp_path), load(SMOKE, tmp_path)
    assert a["pruning"]["owl"] == {"M": 5, "lam": 0.08} and a["models"]["tiny"]["dtype"] == "float32"
    before = list(b["speech"]["variants"]["ddp"]["granularities"])
    a["speech"]["variants"]["ddp"]["granularities"].append("another")
    assert b["speech"]["variants"]["ddp"]["granularities"] == before


END_TO_END = [
    "unknown pruning method",
    "N:M with N = M",
    "misspelt section",
    "a key given twice",
    "sparsity 0 (no variant)",
    "speech corpus named ..",
]
FILE_LEVEL = ["a config file that is a list", "an empty config file", "a config file of invalid YAML"]


def workdir_with_a_result(tmp_path):
    (tmp_path / "wf").mkdir()
    wd = copy_repo(tmp_path / "wf")
    old = wd / "results" / "tables" / "perplexity.csv"
    old.parent.mkdir(parents=True)
    old.write_text("model,variant,dataset,metric,value\ntiny,dense,tiny,perplexity,42\n")
    stamp = time.time() - 3600
    os.utime(old, (stamp, stamp))
    return wd, old, stamp


def assert_refused_untouched(proc, wd, old, stamp, words):
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "bad config" in out and all(w in out for w in words), out[-2000:]
    assert "Traceback" not in out and 'File "' not in out, out[-2000:]
    assert "Select jobs to execute" not in out and "rule " not in out
    assert old.stat().st_mtime == stamp and "42" in old.read_text()
    assert sorted(str(p.relative_to(wd)) for p in (wd / "results").rglob("*") if p.is_file()) == ["results/tables/perplexity.csv"]


@pytest.mark.workflow
@pytest.mark.parametrize("what", END_TO_END)
def test_snakemake_refuses_before_any_job_and_touches_nothing(tmp_path, what):
    _, cfg, key, value, allowed = next(b for b in BAD if b[0] == what)
    wd, old, stamp = workdir_with_a_result(tmp_path)
    (tmp_path / "bad.yaml").write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    proc = snakemake(wd, "--configfile", str(tmp_path / "bad.yaml"), check=False)
    assert_refused_untouched(proc, wd, old, stamp, [key, value, *allowed])


@pytest.mark.workflow
@pytest.mark.parametrize("what", FILE_LEVEL)
def test_run_sh_names_a_config_file_snakemake_cannot_read(tmp_path, what):
    """Snakemake refuses these before the Snakefile runs, without naming the file;
    workflow/run.sh checks every --configfile first and names it."""
    import subprocess
    import sys

    _, text, key, value, allowed = next(b for b in BAD if b[0] == what)
    wd, old, stamp = workdir_with_a_result(tmp_path)
    (tmp_path / "bad.yaml").write_text(text)
    env = {**os.environ, "COMPBENCH_VENV": sys.prefix, "COMPBENCH_SKIP_SETUP": "1"}
    proc = subprocess.run(
        ["bash", "workflow/run.sh", "snakemake", "-n", "--configfile", str(tmp_path / "bad.yaml")],
        cwd=wd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert_refused_untouched(proc, wd, old, stamp, [str(tmp_path / "bad.yaml"), value, *allowed])

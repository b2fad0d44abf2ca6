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


def _check_calibration_study(config: dict) -> None:
    st = config.get("calibration_study")
    if not st:
        return
    from compbench.calibration_study.study import validate
    from compbench.tasks import TASKS

    try:
        validate(st)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if "tiny" in [s for g in [st] + st.get("sweeps", []) for s in g.get("sources", [])] and "corpus" not in config:
        raise ConfigError("calibration_study.sources contains 'tiny', which needs the `corpus` section")
    for t in st.get("lm_eval", {}).get("tasks", []):
        if t.startswith("cb_") and t[3:] not in TASKS:
            raise ConfigError(f"calibration_study.lm_eval.tasks: unknown generated task {t!r}; allowed: {', '.join('cb_' + n for n in TASKS.names())}")


CHECKS.append(_check_calibration_study)


def _check_lowrank(config: dict) -> None:
    lr = config.get("lowrank")
    if not lr:
        return
    if "spectra" not in config:
        raise ConfigError("lowrank needs the `spectra` section (the singular values come from the spectra stage)")
    ft = lr.get("finetune", {})
    for key in ("allocations", "ratios"):
        extra = [v for v in ft.get(key, []) if v not in lr[key]]
        if extra:
            raise ConfigError(f"lowrank.finetune.{key} has {extra}, not in lowrank.{key}; allowed: {lr[key]}")
    if ft.get("data") == "tiny" and ft.get("ratios") and "corpus" not in config:
        raise ConfigError("lowrank.finetune.data='tiny' needs the `corpus` section")


CHECKS.append(_check_lowrank)


def _check_memtrain(config: dict) -> None:
    mt = config.get("memtrain")
    if not mt:
        return
    if "finetune" not in mt and "pretrain" not in mt:
        raise ConfigError("memtrain needs a `finetune` or a `pretrain` regime (or both)")
    every = set(mt["variants"]) | set(mt.get("finetune", {}).get("variants") or []) | set(mt.get("pretrain", {}).get("variants") or [])
    for v in sorted(every):
        if not any(k in mt.get("lr", {}) for k in (v, v.split("_")[0], "default")):
            raise ConfigError(f"memtrain.lr has no learning rate for variant {v!r}; set memtrain.lr.{v.split('_')[0]} or memtrain.lr.default")
    ft = mt.get("finetune")
    if ft:
        known = list(config.get("models", {}))
        for m in ft.get("models") or known:
            if m not in known:
                raise ConfigError(f"memtrain.finetune.models names {m!r}, which is not in `models`; allowed: {', '.join(known)}")
            if config["models"][m]["source"] == "tiny" and ft["seq_len"] > config.get("tiny_model", {}).get("seq_len", ft["seq_len"]):
                raise ConfigError(
                    f"memtrain.finetune.seq_len={ft['seq_len']} exceeds the tiny model's tiny_model.seq_len={config['tiny_model']['seq_len']}"
                )
        if ft.get("data", "tiny") == "tiny" and "corpus" not in config:
            raise ConfigError("memtrain.finetune.data='tiny' needs the `corpus` section")
    pt = mt.get("pretrain")
    if pt:
        resources = config.get("resources", {})
        for name, s in pt["sizes"].items():
            if s["size"] not in resources:
                raise ConfigError(f"memtrain.pretrain.sizes.{name}.size={s['size']!r} names no resource class; allowed: {', '.join(resources)}")
            if s["hidden_size"] % s["num_heads"]:
                raise ConfigError(f"memtrain.pretrain.sizes.{name}: hidden_size={s['hidden_size']} not divisible by num_heads={s['num_heads']}")
            if pt["seq_len"] > s["seq_len"]:
                raise ConfigError(f"memtrain.pretrain.seq_len={pt['seq_len']} exceeds memtrain.pretrain.sizes.{name}.seq_len={s['seq_len']}")
        if pt.get("tokenizer", "tiny") == "tiny" and "tokenizer" not in config:
            raise ConfigError("memtrain.pretrain.tokenizer='tiny' needs the `tokenizer` section")
        if pt.get("data", "tiny") == "tiny" and "corpus" not in config:
            raise ConfigError("memtrain.pretrain.data='tiny' needs the `corpus` section")


CHECKS.append(_check_memtrain)


def _check_vision(config: dict) -> None:
    v = config.get("vision") or {}
    f = v.get("fusion")
    if f:
        if f["model"] not in config.get("models", {}):
            raise ConfigError(f"vision.fusion.model={f['model']!r} is not one of the config's `models`; defined: {', '.join(config.get('models', {})) or 'none'}")
        names = [t["name"] for t in f["tasks"]]
        if len(set(names)) != len(names):
            raise ConfigError(f"vision.fusion.tasks: task names must be distinct, got {names}")
        for t in f["tasks"]:
            if t["source"] == "generated" and t["name"] not in ("animal", "outdoor", "warm"):
                raise ConfigError(f"vision.fusion.tasks: generated task {t['name']!r} unknown; allowed: animal, outdoor, warm")
            if t["source"] == "hf" and not ("id" in t and "label_words" in t):
                raise ConfigError(f"vision.fusion.tasks: hub task {t['name']!r} needs `id` and `label_words`")
    p = v.get("pass")
    if p:
        d, m = p["data"], p["model"]
        if d["source"] == "hf" and "id" not in d or d["source"] == "path" and "path" not in d:
            raise ConfigError(f"vision.pass.data.source={d['source']!r} needs `{'id' if d['source'] == 'hf' else 'path'}`")
        if m["kind"] == "small_resnet" and len(m["widths"]) != len(m["blocks"]):
            raise ConfigError(f"vision.pass.model: widths {m['widths']} and blocks {m['blocks']} must have equal length")
        h = p.get("hypernet", {})
        if d["source"] == "generated" and 2 * h.get("prompt_pad", 2) >= d["size"]:
            raise ConfigError(f"vision.pass.hypernet.prompt_pad={h.get('prompt_pad')} leaves no interior in {d['size']}px images")


CHECKS.append(_check_vision)


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


def _check_speech(config: dict) -> None:
    sp = config.get("speech")
    if not sp:
        return
    c = sp["corpus"]
    if c["source"] == "synthetic":
        for key in ("vocabulary", "n_utterances", "accents", "variants"):
            if key not in c:
                raise ConfigError(f"speech.corpus.source='synthetic' needs speech.corpus.{key}")
        n_voices = len(c["accents"]) * len(c["variants"])
        held = c.get("held_out_voices", {})
        if held.get("dev", 0) + held.get("test", 0) >= n_voices:
            raise ConfigError(
                f"speech.corpus.held_out_voices dev={held.get('dev', 0)} + test={held.get('test', 0)} leaves no training voice "
                f"out of {n_voices} (accents x variants)"
            )
        for key in ("words", "speed", "pitch", "word_gap", "speed_perturb", "snr_db"):
            lo, hi = c[key]
            if lo > hi:
                raise ConfigError(f"speech.corpus.{key}={[lo, hi]}: a range needs min <= max")
    else:
        if not c.get("path") and not c.get("hf_id"):
            raise ConfigError("speech.corpus.source='librispeech' needs speech.corpus.path (a LibriSpeech tree) or speech.corpus.hf_id")
        if not c.get("splits") or "train" not in c["splits"] or "test" not in c["splits"]:
            raise ConfigError("speech.corpus.source='librispeech' needs speech.corpus.splits with at least train and test")
    m = sp["model"]
    if m["d_model"] % m["num_heads"]:
        raise ConfigError(f"speech.model.d_model={m['d_model']} must be divisible by speech.model.num_heads={m['num_heads']}")
    if m["conv_kernel"] % 2 == 0:
        raise ConfigError(f"speech.model.conv_kernel={m['conv_kernel']} must be odd (torchaudio's Conformer pads symmetrically)")
    if sp["features"]["n_mels"] < 7:
        raise ConfigError("speech.features.n_mels must be >= 7 for the 4x convolutional subsampling")
    lr = sp.get("variants", {}).get("lrsms")
    if lr:
        names = [s["name"] for s in lr["settings"]]
        if len(set(names)) != len(names):
            raise ConfigError(f"speech.variants.lrsms.settings: names must be unique, got {names}")
        unknown = [n for n in lr.get("random_init", []) if n not in names]
        if unknown:
            raise ConfigError(f"speech.variants.lrsms.random_init names unknown settings {unknown}; allowed: {', '.join(names)}")
    from compbench.speech.grid import runs

    if not runs(sp):
        raise ConfigError("speech.variants selects no run (dense: false and no lrsms/ddp/msrs section)")


CHECKS.append(_check_speech)


def _check_compose(config: dict) -> None:
    c = config.get("compose")
    if not c:
        return
    from compbench.compose.pipeline import resolve

    ivs = c["interventions"]
    cats = {}
    for iid, spec in ivs.items():
        if "__" in iid or not iid.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError(f"compose.interventions: id {iid!r} must be letters, digits, '-', '_' or '.', without '__'")
        try:
            step = resolve(iid, ivs)
        except (KeyError, ValueError) as e:
            raise ConfigError(f"compose.interventions.{iid}: {e.args[0]}") from None
        unknown = sorted(set(step.params) - set(step.intervention.params_allowed()))
        if unknown:
            raise ConfigError(f"compose.interventions.{iid}: unknown setting(s) {unknown} of method {spec['method']!r}; "
                              f"allowed: {', '.join(step.intervention.params_allowed())}")
        cats[iid] = step.category
    if len(set(cats.values())) < 2:
        raise ConfigError(f"compose.interventions: the ids {list(ivs)} are all of category {set(cats.values())}; "
                          "composing needs at least two categories (edit, compress, unlearn)")
    sw = c.get("sweep")
    if sw:
        bad = [e for e in sw["edits"] if cats.get(e) != "edit"]
        if bad:
            raise ConfigError(f"compose.sweep.edits names {bad}, not edit interventions; allowed: "
                              f"{', '.join(i for i, k in cats.items() if k == 'edit')}")
        if cats.get(sw["compressor"]) != "compress" or "sparsity" not in ivs[sw["compressor"]]:
            raise ConfigError(f"compose.sweep.compressor={sw['compressor']!r} must be a pruning intervention with a sparsity; "
                              f"allowed: {', '.join(i for i in ivs if cats[i] == 'compress' and 'sparsity' in ivs[i])}")
    if c.get("data", {}).get("source", "world") == "world":
        if "knowledge" not in config.get("corpus", {}).get("sources", []):
            raise ConfigError("compose.data.source='world' needs the knowledge world in the corpus: add 'knowledge' to corpus.sources")


CHECKS.append(_check_compose)

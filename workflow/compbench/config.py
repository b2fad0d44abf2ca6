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
    from .speech.grid import runs

    if not runs(sp):
        raise ConfigError("speech.variants selects no run (dense: false and no lrsms/ddp/msrs section)")


CHECKS.append(_check_speech)

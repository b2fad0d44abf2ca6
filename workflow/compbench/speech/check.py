"""Cross-field checks of the `speech` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError


def check(config: dict) -> None:
    sp = config["speech"]
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
    d = sp.get("variants", {}).get("ddp")
    if d:
        if "time" in d.get("budgets", []) and not sp["variants"].get("dense", True):
            raise ConfigError("speech.variants.ddp.budgets has `time` (the dense run's training time) but speech.variants.dense is false")
        if "segment" in d["granularities"] and c["source"] == "librispeech" and not c.get("alignments"):
            raise ConfigError(
                "speech.variants.ddp.granularities has `segment`, which needs word alignments: set speech.corpus.alignments "
                "(librispeech-alignments tree) for source librispeech"
            )
    from compbench.speech.grid import runs

    if not runs(sp):
        raise ConfigError("speech.variants selects no run (dense: false and no lrsms/ddp/msrs section)")

"""Cross-field checks of the `memtrain` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError


def check(config: dict) -> None:
    mt = config["memtrain"]
    if "finetune" not in mt and "pretrain" not in mt:
        raise ConfigError("memtrain needs a `finetune` or a `pretrain` regime (or both)")
    every = set(mt["variants"]) | set(mt.get("finetune", {}).get("variants") or []) | set(mt.get("pretrain", {}).get("variants") or [])
    for v in sorted(every):
        if not any(k in mt.get("lr", {}) for k in (v, v.split("_")[0], "default")):
            raise ConfigError(
                f"memtrain.lr has no learning rate for variant {v!r}; set memtrain.lr.{v.split('_')[0]} or memtrain.lr.default"
            )
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
                raise ConfigError(
                    f"memtrain.pretrain.sizes.{name}.size={s['size']!r} names no resource class; allowed: {', '.join(resources)}"
                )
            if s["hidden_size"] % s["num_heads"]:
                raise ConfigError(
                    f"memtrain.pretrain.sizes.{name}: hidden_size={s['hidden_size']} not divisible by num_heads={s['num_heads']}"
                )
            if pt["seq_len"] > s["seq_len"]:
                raise ConfigError(
                    f"memtrain.pretrain.seq_len={pt['seq_len']} exceeds memtrain.pretrain.sizes.{name}.seq_len={s['seq_len']}"
                )
        if pt.get("tokenizer", "tiny") == "tiny" and "tokenizer" not in config:
            raise ConfigError("memtrain.pretrain.tokenizer='tiny' needs the `tokenizer` section")
        if pt.get("data", "tiny") == "tiny" and "corpus" not in config:
            raise ConfigError("memtrain.pretrain.data='tiny' needs the `corpus` section")

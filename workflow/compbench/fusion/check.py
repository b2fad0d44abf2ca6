"""Cross-field checks of the `vision.fusion` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError
from compbench.fusion.tasks import GENERATED


def check(config: dict) -> None:
    f = config["vision"]["fusion"]
    if f["model"] not in config.get("models", {}):
        raise ConfigError(
            f"vision.fusion.model={f['model']!r} is not one of the config's `models`; defined: {', '.join(config.get('models', {})) or 'none'}"
        )
    names = [t["name"] for t in f["tasks"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"vision.fusion.tasks: task names must be distinct, got {names}")
    for t in f["tasks"]:
        if t["source"] == "generated" and t["name"] not in GENERATED:
            raise ConfigError(f"vision.fusion.tasks: generated task {t['name']!r} unknown; allowed: {', '.join(GENERATED.names())}")
        if t["source"] == "hf" and not ("id" in t and "label_words" in t):
            raise ConfigError(f"vision.fusion.tasks: hub task {t['name']!r} needs `id` and `label_words`")

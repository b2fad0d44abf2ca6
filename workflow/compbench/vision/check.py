"""Cross-field checks of the `vision.pass` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError


def check(config: dict) -> None:
    p = config["vision"]["pass"]
    d, m = p["data"], p["model"]
    if d["source"] == "hf" and "id" not in d or d["source"] == "path" and "path" not in d:
        raise ConfigError(f"vision.pass.data.source={d['source']!r} needs `{'id' if d['source'] == 'hf' else 'path'}`")
    if m["kind"] == "small_resnet" and len(m["widths"]) != len(m["blocks"]):
        raise ConfigError(f"vision.pass.model: widths {m['widths']} and blocks {m['blocks']} must have equal length")
    if m["kind"] == "small_resnet" and m.get("weights"):
        raise ConfigError(
            f"vision.pass.model.weights={m['weights']!r}: small_resnet has no pretrained weights; "
            "allowed: no weights, or a torchvision kind (resnet18, ...) with its weights name"
        )
    h = p.get("hypernet", {})
    if d["source"] == "generated" and 2 * h.get("prompt_pad", 2) >= d["size"]:
        raise ConfigError(f"vision.pass.hypernet.prompt_pad={h.get('prompt_pad')} leaves no interior in {d['size']}px images")

"""The MoE-fusion line's tasks and final files (torch-free). Its config section is
``vision.fusion`` (a historical name: the fused models are language models)."""

from __future__ import annotations

from compbench.lines import RESULTS

FUSION_DIR = f"{RESULTS}/vision/fusion"


def section(config: dict) -> dict:
    return config["vision"]["fusion"]


def tasks(config: dict) -> list[str]:
    return [t["name"] for t in section(config)["tasks"]]


def task_spec(config: dict, name: str) -> dict:
    return next(t for t in section(config)["tasks"] if t["name"] == name)


def targets(config: dict) -> list[str]:
    m = section(config)["model"]
    return [f"{RESULTS}/tables/fusion-{m}.csv", f"{RESULTS}/figures/fusion-{m}.png"]

"""The MoE-fusion line's tasks, seeds and final files (torch-free). Its config section is
``vision.fusion`` (a historical name: the fused models are language models).

Per seed of ``vision.fusion.seeds`` the per-task fine-tuning, the router and the evaluation
run under ``<model>/s<seed>/``; the tasks (``data_seed``) are the same for every seed, so
adding a seed adds only that seed's jobs."""

from __future__ import annotations

from compbench.lines import RESULTS

FUSION_DIR = f"{RESULTS}/vision/fusion"


def section(config: dict) -> dict:
    return config["vision"]["fusion"]


def tasks(config: dict) -> list[str]:
    return [t["name"] for t in section(config)["tasks"]]


def task_spec(config: dict, name: str) -> dict:
    return next(t for t in section(config)["tasks"] if t["name"] == name)


def seeds(config: dict) -> list[int]:
    return [int(s) for s in section(config)["seeds"]]


def seed_files(config: dict, model: str, name: str) -> list[str]:
    """One file (``points.csv``, ``router.csv``) of every seed."""
    return [f"{FUSION_DIR}/{model}/s{s}/{name}" for s in seeds(config)]


def points(model: str) -> str:
    """Every seed's evaluated models (accuracy rows with per-item correctness), for the claims' intervals."""
    return f"{RESULTS}/tables/fusion-points-{model}.csv"


def targets(config: dict) -> list[str]:
    m = section(config)["model"]
    return [f"{RESULTS}/tables/fusion-{m}.csv", f"{RESULTS}/tables/fusion-{m}-summary.csv", f"{RESULTS}/figures/fusion-{m}.png"]

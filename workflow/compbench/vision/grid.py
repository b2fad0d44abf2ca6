"""The PASS grid a config asks for (torch-free): per seed of ``vision.pass.seeds`` the dense
network, then one pruned network per (method, MACs target), under ``pass/s<seed>/``; the
images are the same for every seed, so adding a seed adds only that seed's jobs."""

from __future__ import annotations

from compbench.lines import RESULTS

PASS_DIR = f"{RESULTS}/vision/pass"
ITEMS = f"{PASS_DIR}/items.csv"  # every run's per-image correctness (compbench.vision.summary)


def seeds(config: dict) -> list[int]:
    return [int(s) for s in config["vision"]["pass"]["seeds"]]


def runs(config: dict) -> list[str]:
    """Run directories under ``s<seed>/``: ``dense`` and ``<method>-<target>``."""
    p = config["vision"]["pass"]
    return ["dense"] + [f"{m}-{t}" for m in p["methods"] for t in p["flops_targets"]]


def records(config: dict) -> list[str]:
    return [f"{PASS_DIR}/s{s}/{r}.csv" if r == "dense" else f"{PASS_DIR}/s{s}/{r}/record.csv" for s in seeds(config) for r in runs(config)]


def item_files(config: dict) -> list[str]:
    return [
        f"{PASS_DIR}/s{s}/{r}-items.csv" if r == "dense" else f"{PASS_DIR}/s{s}/{r}/items.csv" for s in seeds(config) for r in runs(config)
    ]


def targets(config: dict) -> list[str]:
    return [
        f"{RESULTS}/tables/pass.csv",
        f"{RESULTS}/tables/pass-summary.csv",
        f"{RESULTS}/figures/pass-accuracy.png",
        f"{RESULTS}/figures/pass-channels.png",
    ]

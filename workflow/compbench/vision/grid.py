"""The PASS grid a config asks for (torch-free): the dense network, then one pruned
network per (method, MACs target) of ``vision.pass``."""

from __future__ import annotations

from compbench.lines import RESULTS

PASS_DIR = f"{RESULTS}/vision/pass"


def records(config: dict) -> list[str]:
    p = config["vision"]["pass"]
    return [f"{PASS_DIR}/dense.csv"] + [f"{PASS_DIR}/{m}-{t}/record.csv" for m in p["methods"] for t in p["flops_targets"]]


def targets(config: dict) -> list[str]:
    return [f"{RESULTS}/tables/pass.csv", f"{RESULTS}/figures/pass-accuracy.png", f"{RESULTS}/figures/pass-channels.png"]

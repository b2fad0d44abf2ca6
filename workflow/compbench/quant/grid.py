"""The quantisation grid a config asks for (torch-free: the rules call it at DAG-build time).

Variants: ``quant-<method>-w<bits>g<group>`` (the dense model, weight-only, every
method × bit width × group size) and ``quant-<method>-w<bits>g<group>-on-<pruned>``
(a pruned variant of the pruning line or the calibration study, then quantised:
``quant.compositions``). Calibration: ``quant.calibration``, else the pruning line's
token set (the same file, made once).
"""

from __future__ import annotations

from compbench import lines
from compbench.lines import RESULTS

WILDCARDS = dict(method=r"[a-z]+", bits=r"\d+", group=r"\d+")


def name(method: str, bits: int, group: int, on: str | None = None) -> str:
    return f"quant-{method}-w{bits}g{group}" + (f"-on-{on}" if on else "")


def settings(config: dict) -> list[tuple[int, int]]:
    q = config["quant"]
    return [(b, g) for b in q["bits"] for g in q["group_sizes"]]


def composition_bases(config: dict) -> list[str]:
    return list((config["quant"].get("compositions") or {}).get("pruned", []))


def variants(config: dict, model: str) -> dict[str, str]:
    q = config["quant"]
    names = [name(m, b, g) for m in q["methods"] for b, g in settings(config)]
    comp = q.get("compositions") or {}
    names += [name(m, b, g, on) for on in comp.get("pruned", []) for m in comp.get("methods", []) for b, g in settings(config)]
    return {n: f"{RESULTS}/variants/{model}/{n}" for n in names}


def calibration(config: dict) -> dict:
    return config["quant"].get("calibration") or config["pruning"]["calibration"]


def calibration_file(config: dict, model: str) -> str:
    c = calibration(config)
    return f"{RESULTS}/calibration/{model}/{c['source']}_{c['n_samples']}x{c['seq_len']}_s{c['seed']}.safetensors"


def records(config: dict, model: str) -> list[str]:
    return [f"{RESULTS}/quant/{model}/{v}.csv" for v in variants(config, model)]


def targets(config: dict) -> list[str]:
    return lines.per_model(config, "tables/quant-{model}.csv")

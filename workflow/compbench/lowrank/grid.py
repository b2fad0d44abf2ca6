"""The low-rank (WeLore) grid a config asks for (torch-free).

Variants: ``lowrank-<allocation>-<ratio>`` (compressed) and
``lowrank-<allocation>-<ratio>-ft-<mode>`` (fine-tuned: full / lrc / lora).
"""

from __future__ import annotations

from compbench import lines
from compbench.lines import RESULTS

WILDCARDS = dict(ratio=r"0\.\d+", allocation=r"[a-z]+", mode=r"[a-z]+")


def finetune_settings(config: dict, mode: str) -> dict:
    """The part of lowrank.finetune one fine-tuning job reads (its params): not the grid
    lists, the learning rate of its own mode only, LoRA's rank only for LoRA, the C4
    document count only for C4 data."""
    ft = config["lowrank"]["finetune"]
    drop = {"allocations", "ratios", "modes", "lr", "lora", "n_documents"}
    out = {k: v for k, v in ft.items() if k not in drop}
    out["lr"] = {mode: ft["lr"][mode]}
    if mode == "lora":
        out["lora"] = ft["lora"]
    if ft["data"] == "c4" and "n_documents" in ft:
        out["n_documents"] = ft["n_documents"]
    return out


def compressed(config: dict, model: str) -> dict[str, str]:
    c = config["lowrank"]
    return {f"lowrank-{a}-{r}": f"{RESULTS}/variants/{model}/lowrank-{a}-{r}" for a in c["allocations"] for r in c["ratios"]}


def finetune_cells(config: dict) -> list[tuple[str, float, str]]:
    f = config["lowrank"]["finetune"]
    return [(a, r, mode) for a in f["allocations"] for r in f["ratios"] for mode in f["modes"]]


def finetuned(config: dict, model: str) -> dict[str, str]:
    return {f"lowrank-{a}-{r}-ft-{mode}": f"{RESULTS}/variants/{model}/lowrank-{a}-{r}-ft-{mode}" for a, r, mode in finetune_cells(config)}


def finetune_curves(config: dict, model: str) -> list[str]:
    return [f"{RESULTS}/lowrank/{model}/finetune-{a}-{r}-{mode}.csv" for a, r, mode in finetune_cells(config)]


def variants(config: dict, model: str) -> dict[str, str]:
    return {**compressed(config, model), **finetuned(config, model)}


def targets(config: dict) -> list[str]:
    return lines.per_model(
        config,
        "tables/lowrank-{model}.csv",
        "figures/lowrank-ranks-{model}.png",
        "figures/lowrank-{model}.png",
        "figures/lowrank-finetune-{model}.png",
    )

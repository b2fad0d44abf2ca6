"""The composability runs a config asks for.

Runs: ``none`` (the unchanged model), each intervention alone, and every pair of
ids from different categories (once, named ``<a>__<b>`` with a < b in sorted order,
so reordering ``compose.interventions`` renames and reruns nothing; each pair job runs
both orders), plus the edit × pruning-sparsity sweep ``<edit>__<compressor>-s<sparsity>``.
Importing this module is torch-free; the categories come from the intervention
registry, which is imported (with torch) on first use.
"""

from __future__ import annotations

import re
import sys

from compbench import lines

RUN_WILDCARD = r"[A-Za-z0-9_.\-]+"


def categories(config: dict) -> dict[str, str]:
    """Intervention id -> category (edit / compress / unlearn), from the registry."""
    from compbench.compose.pipeline import resolve

    ivs = config["compose"]["interventions"]
    return {i: resolve(i, ivs).category for i in ivs}


def pairs(config: dict) -> list[str]:
    cats = categories(config)
    ids = sorted(cats)
    out = [f"{a}__{b}" for i, a in enumerate(ids) for b in ids[i + 1 :] if cats[a] != cats[b]]
    sw = config["compose"].get("sweep")
    if sw:
        out += [f"{e}__{sw['compressor']}-s{s}" for e in sw["edits"] for s in sw["sparsities"]]
    return list(dict.fromkeys(out))


def runs(config: dict) -> list[str]:
    return ["none", *config["compose"]["interventions"], *pairs(config)]


def run_interventions(config: dict, run: str) -> dict:
    """The entries of compose.interventions a run applies (its params): adding or changing
    another entry reruns nothing of it. A sweep id ``<id>-s<sparsity>`` needs ``<id>``."""
    ivs = config["compose"]["interventions"]
    used = set()
    for i in [] if run == "none" else run.split("__"):
        used.add(i if i in ivs else re.sub(r"-s0\.\d+$", "", i))
    return {i: ivs[i] for i in sorted(used) if i in ivs}


def data_needs_model(config: dict) -> bool:
    """Whether the study's data source reads the model (``facts`` checks what it knows)."""
    from compbench.compose.data import needs_model

    return needs_model(config["compose"]["data"])


def calib_name(config: dict) -> str:
    c = config["compose"]["calibration"]
    return f"{c['source']}_{c['n_samples']}x{c['seq_len']}_s{c['seed']}"


def memit_entries(config: dict) -> dict:
    """The MEMIT entries of the config: id -> settings (their key statistics are computed once per model)."""
    return {i: s for i, s in config["compose"]["interventions"].items() if s["method"] == "memit"}


def uses_memit(config: dict, run: str) -> bool:
    from compbench.compose.pipeline import sequence_steps

    return any(s.intervention.name == "memit" for s in sequence_steps(run, config["compose"]["interventions"]))


def run_modules(config: dict, run: str) -> list[str]:
    """The intervention modules a run uses (its code inputs narrow to these)."""
    from compbench.compose.pipeline import sequence_steps

    steps = sequence_steps(run, config["compose"]["interventions"])
    return sorted({sys.modules[s.intervention.fn.__module__].__name__ for s in steps})


def targets(config: dict) -> list[str]:
    return lines.per_model(
        config,
        "tables/compose-{model}.csv",
        "tables/composability-{model}.csv",
        "figures/composability-{model}.png",
        "figures/compose-sparsity-{model}.png",
    )

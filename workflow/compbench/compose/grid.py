"""The composability runs a config asks for.

Runs: ``none`` (the unchanged model), each intervention alone, and every pair of
ids from different categories (once, named ``<a>__<b>`` with a < b in sorted order,
so reordering ``compose.interventions`` renames and reruns nothing; each pair job runs
both orders), plus the edit × pruning-sparsity sweep ``<edit>__<compressor>-s<sparsity>``.
Torch-free, also in use: the interventions' categories and modules come from their
source (:mod:`compbench.compose.interventions.catalogue`), not from the registry.
"""

from __future__ import annotations

import re

from compbench import lines
from compbench.compose.interventions.catalogue import catalogue

RUN_WILDCARD = r"[A-Za-z0-9_.\-]+"
STEP_WILDCARD = r"(?!.*__)[A-Za-z0-9_.\-]+"  # one intervention id (a run without the pair separator)


SWEEP = re.compile(r"^(?P<base>.+)-s(?P<sparsity>0\.\d+)$")  # as compose.pipeline.SWEEP


def method(config: dict, iid: str) -> str:
    """The method an intervention id stands for (``<id>-s<sparsity>``: ``<id>``'s)."""
    ivs = config["compose"]["interventions"]
    m = SWEEP.match(iid)
    return ivs[iid if iid in ivs or not m else m["base"]]["method"]


def categories(config: dict) -> dict[str, str]:
    """Intervention id -> category (edit / compress / unlearn)."""
    return {i: catalogue()[method(config, i)].category for i in config["compose"]["interventions"]}


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


def _ids(run: str) -> list[str]:
    return [] if run == "none" else run.split("__")


def first_steps(run: str) -> list[str]:
    """The interventions a run's orders start with: its one intervention, or both of a pair
    (one per order). Rule compose_first applies each once per model; the runs read it."""
    return _ids(run)


def uses_memit(config: dict, run: str) -> bool:
    return any(method(config, i) == "memit" for i in _ids(run))


def run_modules(config: dict, run: str) -> list[str]:
    """The intervention modules a run uses (its code inputs narrow to these)."""
    return sorted({catalogue()[method(config, i)].module for i in _ids(run)})


def targets(config: dict) -> list[str]:
    return lines.per_model(
        config,
        "tables/compose-{model}.csv",
        "tables/composability-{model}.csv",
        "figures/composability-{model}.png",
        "figures/compose-sparsity-{model}.png",
    )

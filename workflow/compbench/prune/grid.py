"""The pruning grid a config asks for (torch-free: the rules call it at DAG-build time).

Variants: ``prune-<method>-<allocation>-<sparsity>`` for every method × allocation
× sparsity, AlphaPruning's epsilon sweep ``prune-<method>-<rule>-eps<e>-<sparsity>``
(``pruning.alpha_sweep``), and N:M patterns ``prune-<method>-<n>of<m>``.
"""

from __future__ import annotations

from compbench import lines
from compbench.lines import RESULTS

EPS_RULES = ("alpha", "alpha_rev")  # allocation rules with an epsilon
WILDCARDS = dict(sparsity=r"0\.\d+", allocation=r"[a-z_]+(-eps[0-9.]+)?", method=r"[a-z]+")


def calib_name(config: dict) -> str:
    """The calibration token set of the pruning grid (file stem under results/calibration/<model>/)."""
    c = config["pruning"]["calibration"]
    return f"{c['source']}_{c['n_samples']}x{c['seq_len']}_s{c['seed']}"


def epsilon(config: dict, method: str, sparsity) -> float:
    """AlphaPruning's epsilon for a method at a sparsity (config: a number, or sparsity -> number)."""
    eps = config["pruning"]["epsilon"]
    e = eps.get(method, eps["default"])
    if isinstance(e, dict):
        e = e.get(str(sparsity), e.get("default", eps["default"]))
    return e


def allocation_file(config: dict, model: str, method: str, allocation: str, sparsity) -> str:
    """Allocations that do not depend on the method are computed once: the
    file of `alpha` carries its epsilon, uniform/OWL files are shared. An
    allocation named with its epsilon (`alpha-eps0.1`, the sweep) uses it."""
    key = f"{allocation}-eps{epsilon(config, method, sparsity)}" if allocation in EPS_RULES else allocation
    return f"{RESULTS}/allocation/{model}/{key}-{sparsity}.csv"


def allocation_hyper(config: dict, allocation: str) -> dict:
    """Hyper-parameters of an allocation file's rule (from its name and the config)."""
    p = config["pruning"]
    if "-eps" in allocation:
        return {"epsilon": float(allocation.split("-eps")[1])}
    if allocation == "owl":
        return {"M": p["owl"]["M"], "lam": p["owl"]["lam"]}
    return {}


def sweep_variants(config: dict, model: str) -> dict[str, str]:
    """AlphaPruning's epsilon sweep and the reversed-direction control
    (config pruning.alpha_sweep): `prune-<method>-<rule>-eps<e>-<sparsity>`."""
    sw = config["pruning"].get("alpha_sweep") or {}
    out = {}
    for m in sw.get("methods", []):
        for s in sw.get("sparsities", []):
            for rl in ["alpha"] + (["alpha_rev"] if sw.get("reversed") else []):
                for e in sw.get("epsilons", []):
                    name = f"prune-{m}-{rl}-eps{e}-{s}"
                    out[name] = f"{RESULTS}/variants/{model}/{name}"
    return out


def variants(config: dict, model: str) -> dict[str, str]:
    p = config["pruning"]
    out = {}
    for m in p["methods"]:
        for a in p["allocations"]:
            for s in p["sparsities"]:
                out[f"prune-{m}-{a}-{s}"] = f"{RESULTS}/variants/{model}/prune-{m}-{a}-{s}"
    out.update(sweep_variants(config, model))
    for m in p["nm_methods"]:
        for n, mm in p["nm"]:
            out[f"prune-{m}-{n}of{mm}"] = f"{RESULTS}/variants/{model}/prune-{m}-{n}of{mm}"
    return out


def targets(config: dict) -> list[str]:
    return lines.per_model(
        config,
        "tables/pruning-{model}.csv",
        "figures/pruning-{model}.png",
        "figures/allocation-{model}.png",
        "figures/pruning-paper-table-{model}.png",
        "figures/pruning-paper-table-{model}.html",
        "figures/alpha-sweep-{model}.png",
    )

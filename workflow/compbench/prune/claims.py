"""The pruning line's paper claims (AlphaPruning, OWL), decided on this run's
pruning table (compbench.verdicts), with a paired bootstrap interval over the
perplexity's evaluation windows (compbench.verdicts.perplexity_interval)."""

from __future__ import annotations

from compbench import lines
from compbench.lines import RESULTS
from compbench.prune import grid
from compbench.verdicts import Claim, Outcome, perplexity_interval, untestable, with_summary

# The published WikiText-2 perplexities of LLaMA-7B at 70 % unstructured sparsity,
# from the AlphaPruning paper's comparison of allocations (Lu et al., NeurIPS 2024;
# the same numbers config/config.yaml lists as pruning.anchors for the paper table).
PAPER_SPARSITY = 0.7
PAPER = {
    "dense": 5.68,
    "wanda/uniform": 85.77,
    "wanda/owl": 24.55,
    "wanda/alpha": 23.86,
    "sparsegpt/uniform": 26.30,
    "sparsegpt/owl": 19.49,
}
SOURCE = "AlphaPruning (Lu et al., NeurIPS 2024): LLaMA-7B, WikiText-2 perplexity at 70 % sparsity"
# The allocation each claim puts against uniform: (paper, statement).
ALLOCATIONS = {
    "alpha": ("AlphaPruning", "AlphaPruning's heavy-tail allocation gives lower perplexity than uniform sparsity"),
    "owl": ("OWL (Yin et al., ICML 2024)", "OWL's outlier-weighted allocation gives lower perplexity than uniform sparsity"),
}


def sparsity(config: dict) -> float:
    """The sparsity the claims are checked at: the paper's 70 % when the config runs it, else its highest."""
    grid = [float(s) for s in config["pruning"]["sparsities"]]
    return PAPER_SPARSITY if PAPER_SPARSITY in grid else max(grid)


def anchor(method: str, allocation: str) -> str:
    u, a = PAPER.get(f"{method}/uniform"), PAPER.get(f"{method}/{allocation}")
    if u is None:
        return f"no published number for {method} in {SOURCE.split(':')[0]}'s table"
    return f"uniform {u:.2f} → {allocation} {a:.2f}" if a is not None else f"uniform {u:.2f} ({allocation}: not listed)"


def beats_uniform(read, path: str, method: str, allocation: str, target: float, windows=()) -> Outcome:
    """Perplexity of uniform minus the allocation's (> 0: the allocation wins); its interval
    from the two variants' windows (``windows``: the window tables holding them)."""
    t = read(path)
    t = t[(t["method"] == method) & (t["target"].astype(float).round(6) == round(target, 6))]
    ds = sorted(t["dataset"].dropna().unique())
    if not ds:
        return untestable(f"no {method} variant at {target:.0%}")
    t = t[t["dataset"] == ds[0]].set_index("allocation")
    if "uniform" not in t.index or allocation not in t.index:
        return untestable(f"the grid has no {method} {allocation}/uniform pair at {target:.0%}")
    u, a = float(t.at["uniform", "perplexity"]), float(t.at[allocation, "perplexity"])
    noise = perplexity_interval(read, windows, ds[0], t.at["uniform", "variant"], t.at[allocation, "variant"])
    return with_summary(f"uniform {u:.1f} → {allocation} {a:.1f} ({ds[0]} perplexity, {target:.0%})", u - a, noise)


def claims(config: dict) -> list[Claim]:
    pr = config["pruning"]
    target = sparsity(config)
    out = []
    for m in config.get("models", {}):
        path = f"{RESULTS}/tables/pruning-{m}.csv"
        windows = tuple(lines.perplexity_outputs(config, m, list(grid.variants(config, m)), what="windows"))
        for allocation, (paper, statement) in ALLOCATIONS.items():
            if allocation not in pr["allocations"]:
                continue
            for method in pr["methods"]:
                out.append(
                    Claim(
                        id=f"pruning/{allocation}-beats-uniform/{m}/{method}",
                        line="pruning",
                        paper=paper,
                        statement=f"{statement} ({method}, {target:.0%}, {m})",
                        anchor=anchor(method, allocation),
                        source=SOURCE,
                        link=f"{RESULTS}/figures/pruning-paper-table-{m}.html",
                        inputs=(path, *windows),
                        evaluate=lambda read, path=path, method=method, allocation=allocation, windows=windows: beats_uniform(
                            read, path, method, allocation, target, windows
                        ),
                    )
                )
    return out

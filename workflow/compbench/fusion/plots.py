"""Figures of the MoE-fusion line: Pareto fronts of every method, hypervolume."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

FSTYLE = {
    "moe_fusion": ("C0", "o", "-"),
    "task_arithmetic": ("C1", "s", "none"),
    "interpolation": ("C2", "^", "--"),
    "single_task": ("C3", "*", "none"),
    "base": ("k", "x", "none"),
}


def fusion_fronts(wide: pd.DataFrame, hv: pd.DataFrame, tasks: list[str], reference):
    """Task-1 vs task-2 accuracy of every model, per method; the MoE sweep and the interpolation as lines."""
    from compbench.fusion.pareto import nondominated

    fig, ax = plt.subplots(figsize=(6.2, 5), layout="constrained")
    hvs = dict(zip(hv.method, hv.hypervolume))
    for method, g in wide.groupby("method"):
        c, mk, ls = FSTYLE.get(method, ("C4", "d", "none"))
        if method in ("moe_fusion", "interpolation"):
            g = g.sort_values(tasks[0])
        label = f"{method} (HV {hvs.get(method, float('nan')):.4f})"
        ax.plot(g[tasks[0]], g[tasks[1]], linestyle=ls, marker=mk, color=c, label=label, alpha=0.85, ms=7 if mk == "*" else 5)
        if method == "task_arithmetic":
            nd = nondominated(g[tasks].to_numpy())
            f = g[nd].sort_values(tasks[0])
            ax.plot(f[tasks[0]], f[tasks[1]], ":", color=c, lw=1)
    ax.axvline(reference[0], color="grey", lw=0.6)
    ax.axhline(reference[1], color="grey", lw=0.6)
    ax.set_xlabel(f"accuracy on {tasks[0]}")
    ax.set_ylabel(f"accuracy on {tasks[1]}")
    ax.set_title(f"Pareto fronts (hypervolume reference {list(reference)})")
    ax.legend(fontsize=8)
    return fig

"""Figures of the vision line (PASS, MoE fusion)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

STYLE = {"pass": ("C0", "o", "-"), "pass_noprompt": ("C1", "s", "--"), "l1_uniform": ("C2", "^", ":")}


def _wide(t: pd.DataFrame) -> pd.DataFrame:
    return t.pivot_table(index=["method", "target"], columns="metric", values="value").reset_index()


def pass_accuracy(t: pd.DataFrame):
    """Test accuracy (after fine-tuning; hollow: before) against MACs, one line per method."""
    w = _wide(t)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    dense = w[w.method == "dense"]
    for method, g in w[w.method != "dense"].groupby("method"):
        c, mk, ls = STYLE.get(method, ("C3", "d", "-."))
        g = g.sort_values("macs")
        ax[0].plot(g["macs"] / 1e6, g["accuracy"], ls, marker=mk, color=c, label=method)
        ax[0].plot(g["macs"] / 1e6, g["accuracy_before_finetune"], ls, marker=mk, color=c, mfc="none", alpha=0.5)
        ax[1].plot(g["latency_ms"], g["accuracy"], ls, marker=mk, color=c, label=method)
    if len(dense):
        ax[0].axhline(dense["accuracy"].iloc[0], color="k", ls="--", lw=0.8, label="dense")
        ax[1].axhline(dense["accuracy"].iloc[0], color="k", ls="--", lw=0.8, label="dense")
    ax[0].set_xlabel("MACs per image (millions, counted from the pruned architecture)")
    ax[0].set_ylabel("test accuracy (filled: fine-tuned, hollow: before)")
    ax[1].set_xlabel("measured latency (ms per batch)")
    ax[1].set_ylabel("test accuracy")
    ax[0].legend()
    fig.suptitle("structural channel pruning at equal MACs: PASS vs baselines")
    return fig


def pass_channels(t: pd.DataFrame):
    """Kept channels per prunable unit, one panel per budget, bars per method."""
    rows = t[(t.metric == "accuracy") & (t.method != "dense")].drop_duplicates(["method", "target"])
    targets = sorted(rows.target.unique())
    fig, axes = plt.subplots(1, max(1, len(targets)), figsize=(5 * max(1, len(targets)), 3.6), layout="constrained", squeeze=False)
    for ax, tg in zip(axes[0], targets):
        g = rows[rows.target == tg]
        methods = sorted(g.method)
        for j, (_, r) in enumerate(g.sort_values("method").iterrows()):
            kept, widths = json.loads(r["kept"]), json.loads(r["widths"])
            x = np.arange(len(kept))
            ax.bar(x + (j - (len(methods) - 1) / 2) * 0.8 / len(methods), np.array(kept) / np.array(widths), 0.8 / len(methods),
                   color=STYLE.get(r["method"], ("C3",))[0], label=r["method"])
        ax.set_xlabel("prunable unit (forward order)")
        ax.set_ylabel("kept fraction of channels")
        ax.set_title(f"MACs budget {tg:g} x dense")
        ax.set_ylim(0, 1.05)
    axes[0][0].legend()
    return fig


FSTYLE = {"moe_fusion": ("C0", "o", "-"), "task_arithmetic": ("C1", "s", "none"), "interpolation": ("C2", "^", "--"),
          "single_task": ("C3", "*", "none"), "base": ("k", "x", "none")}


def fusion_fronts(wide: pd.DataFrame, hv: pd.DataFrame, tasks: list[str], reference):
    """Task-1 vs task-2 accuracy of every model, per method; the MoE sweep and the interpolation as lines."""
    from .pareto import nondominated

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

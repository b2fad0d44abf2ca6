"""Figures of the composability line: the paper's heatmaps (pair × metric) of
order-free error and order sensitivity, and metrics against sparsity for
edit→compress vs compress→edit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compbench.compose.composability import METRICS
from compbench.figures import plt


def heatmaps(metrics: pd.DataFrame, title: str):
    """Two panels, rows = pairs (grouped by category pair), columns = metrics; colour
    normalised per metric (columns have different units), the raw value written in."""
    cols = [m for m in METRICS if m in set(metrics["metric"])]
    pairs = list(dict.fromkeys(metrics.sort_values("categories", kind="stable")["pair"]))
    fig, axes = plt.subplots(1, 2, figsize=(2.0 + 1.1 * len(cols) * 2, 1.5 + 0.32 * len(pairs)), layout="constrained")
    for ax, what in zip(axes, ["order_free_error", "order_sensitivity"]):
        grid = metrics.pivot_table(index="pair", columns="metric", values=what).reindex(index=pairs, columns=cols)
        vals = grid.to_numpy(dtype=float)
        lo, hi = np.nanmin(vals, 0), np.nanmax(vals, 0)
        norm = (vals - lo) / np.where(hi > lo, hi - lo, 1)
        ax.imshow(np.ma.masked_invalid(norm), cmap="Reds", aspect="auto", vmin=0, vmax=1)
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                if np.isfinite(vals[i, j]):
                    ax.text(j, i, f"{vals[i, j]:.3g}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels(cols, rotation=35, ha="right", fontsize=7)
        ax.set_yticks(range(len(pairs)))
        ax.set_yticklabels(pairs, fontsize=7)
        ax.set_title(what.replace("_", " ") + " (colour: per metric)", fontsize=9)
    fig.suptitle(title)
    return fig


SWEEP_PANELS = ["edit_success", "generalisation", "locality", "utility_acc", "perplexity"]


def sparsity_curves(runs: pd.DataFrame, sweep: dict, title: str):
    """Metric vs sparsity, edit→compress (solid) vs compress→edit (dashed), per edit method;
    sparsity 0 is the edit alone."""
    fig, axes = plt.subplots(1, len(SWEEP_PANELS), figsize=(3.2 * len(SWEEP_PANELS), 3.0), layout="constrained")
    comp = sweep.get("compressor", "")
    for k, edit in enumerate(sweep.get("edits", [])):
        alone = runs[(runs["order"] == edit)]
        for order, style in (("edit→compress", "o-"), ("compress→edit", "s--")):
            pts = []
            for s in sweep.get("sparsities", []):
                cid = f"{comp}-s{s}"
                name = f"{edit}→{cid}" if order == "edit→compress" else f"{cid}→{edit}"
                pts.append((float(s), runs[runs["order"] == name]))
            for ax, m in zip(axes, SWEEP_PANELS):
                xs, ys = [], []
                a = alone[alone["metric"] == m]["value"]
                if len(a):
                    xs.append(0.0)
                    ys.append(float(a.iloc[0]))
                for s, g in pts:
                    v = g[g["metric"] == m]["value"]
                    if len(v):
                        xs.append(s)
                        ys.append(float(v.iloc[0]))
                ax.plot(xs, ys, style, color=f"C{k}", ms=4, label=f"{edit}: {order}")
    for ax, m in zip(axes, SWEEP_PANELS):
        ax.set_xlabel(f"{comp} sparsity")
        ax.set_title(m, fontsize=9)
        if m == "perplexity":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig

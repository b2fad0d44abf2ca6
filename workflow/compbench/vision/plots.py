"""Figures of the PASS line (vision): accuracy vs MACs, channels kept per layer."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

STYLE = {"pass": ("C0", "o", "-"), "pass_noprompt": ("C1", "s", "--"), "pass_actstats": ("C4", "v", "-."), "l1_uniform": ("C2", "^", ":")}


def _wide(t: pd.DataFrame) -> pd.DataFrame:
    return t.pivot_table(index=["method", "target"], columns="metric", values="value").reset_index()


def _yerr(summary: pd.DataFrame | None, method: str, targets, acc):
    """The summary's 95 % interval of the accuracy as error bars (None where it has none)."""
    if summary is None:
        return None
    s = summary[(summary.metric == "accuracy") & (summary.method == method)].set_index("target")
    s = s.reindex([float(x) for x in targets])
    lo, hi = pd.to_numeric(s.ci_lo).to_numpy(), pd.to_numeric(s.ci_hi).to_numpy()
    if not (pd.notna(lo).all() and pd.notna(hi).all()):
        return None
    return [(np.asarray(acc) - lo).clip(min=0), (hi - np.asarray(acc)).clip(min=0)]


def pass_accuracy(t: pd.DataFrame, summary: pd.DataFrame | None = None):
    """Test accuracy (after fine-tuning, mean over seeds, with the summary's 95 % intervals; hollow:
    before) against MACs, one line per method."""
    w = _wide(t)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    dense = w[w.method == "dense"]
    for method, g in w[w.method != "dense"].groupby("method"):
        c, mk, ls = STYLE.get(method, ("C3", "d", "-."))
        g = g.sort_values("macs")
        yerr = _yerr(summary, method, g["target"], g["accuracy"])
        ax[0].errorbar(g["macs"] / 1e6, g["accuracy"], yerr=yerr, fmt=ls, marker=mk, color=c, label=method, capsize=3)
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
    """Kept channels per prunable unit, one panel per budget, bars per method (the first seed)."""
    rows = t[(t.metric == "accuracy") & (t.method != "dense")]
    if "seed" in rows:
        rows = rows[rows.seed == rows.seed.min()]
    rows = rows.drop_duplicates(["method", "target"])
    targets = sorted(rows.target.unique())
    fig, axes = plt.subplots(1, max(1, len(targets)), figsize=(5 * max(1, len(targets)), 3.6), layout="constrained", squeeze=False)
    for ax, tg in zip(axes[0], targets):
        g = rows[rows.target == tg]
        methods = sorted(g.method)
        for j, (_, r) in enumerate(g.sort_values("method").iterrows()):
            kept, widths = json.loads(r["kept"]), json.loads(r["widths"])
            x = np.arange(len(kept))
            ax.bar(
                x + (j - (len(methods) - 1) / 2) * 0.8 / len(methods),
                np.array(kept) / np.array(widths),
                0.8 / len(methods),
                color=STYLE.get(r["method"], ("C3",))[0],
                label=r["method"],
            )
        ax.set_xlabel("prunable unit (forward order)")
        ax.set_ylabel("kept fraction of channels")
        ax.set_title(f"MACs budget {tg:g} x dense")
        ax.set_ylim(0, 1.05)
    axes[0][0].legend()
    return fig

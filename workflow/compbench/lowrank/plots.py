"""Figures of the low-rank (WeLore) line."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compbench.figures import plt

KIND_ORDER = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def kept_ranks(ranks: pd.DataFrame, title: str):
    """Kept-rank fraction of every matrix (x: block, then module type), WeLore vs uniform, one panel per ratio."""
    targets = sorted(ranks["target"].unique())
    fig, axes = plt.subplots(len(targets), 1, figsize=(10, 2.4 * len(targets)), layout="constrained", squeeze=False, sharex=True)
    for ax, tgt in zip(axes[:, 0], targets):
        g = ranks[ranks.target == tgt].copy()
        g["k"] = g["kind"].map(lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER))
        for i, (alloc, h) in enumerate(sorted(g.groupby("allocation"), key=lambda x: x[0])):
            h = h.sort_values(["block", "k"])
            x = np.arange(len(h))
            frac = h["kept_rank"] / h["full_rank"]
            ax.plot(x, frac, "o-" if alloc == "welore" else "s--", ms=3, lw=0.8, color=f"C{i}", label=alloc)
            nl = ~h["lrc"].astype(bool).to_numpy()
            if nl.any():
                ax.plot(x[nl], frac.to_numpy()[nl], "x", color="k", ms=6, label=f"{alloc}: N-LRC (dense)")
            labels = [f"{b}.{k.split('_')[0]}" for b, k in zip(h["block"], h["kind"])]
        ax.set_ylabel("kept rank / full")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"rank reduction {tgt:g}", fontsize=9)
        ax.legend(fontsize=7, ncol=3)
    axes[-1, 0].set_xticks(np.arange(len(labels)))
    axes[-1, 0].set_xticklabels(labels, rotation=90, fontsize=7)
    axes[-1, 0].set_xlabel("block.module")
    fig.suptitle(title)
    return fig


def perplexity_vs_ratio(table: pd.DataFrame, title: str):
    """Perplexity against rank reduction: uniform vs WeLore, before (lines) and after fine-tuning (markers)."""
    p = table[table.metric == "perplexity"]
    datasets = sorted(p["dataset"].dropna().unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), layout="constrained", squeeze=False)
    marks = {"full": "^", "lrc": "o", "lora": "s"}
    for ax, ds in zip(axes[0], datasets):
        d = p[p.dataset == ds]
        for i, alloc in enumerate(["uniform", "welore"]):
            g = d[(d.allocation == alloc) & (d.finetune == "none")].sort_values("ratio")
            if len(g):
                ax.plot(g.ratio, g.value, "-" if alloc == "welore" else "--", color=f"C{i}", marker=".", label=f"{alloc} (compressed)")
            for mode, h in d[(d.allocation == alloc) & (d.finetune != "none")].groupby("finetune"):
                ax.plot(h.ratio, h.value, marks.get(mode, "*"), color=f"C{i}", mfc="none", ms=8, label=f"{alloc} + {mode} fine-tuning")
        dense = d[d.allocation == "dense"]
        if len(dense):
            ax.axhline(dense.value.iloc[0], color="k", ls=":", lw=1, label="dense")
        ax.set_yscale("log")
        ax.set_xlabel("rank reduction (fraction of total rank removed)")
        ax.set_ylabel(f"perplexity ({ds})")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def finetune_panel(curves: pd.DataFrame, table: pd.DataFrame, title: str):
    """Validation loss vs tokens per fine-tuning run; throughput, optimizer memory and trainable parameters."""
    if curves.empty:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.set_title("no fine-tuning run configured (lowrank.finetune)")
        return fig
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), layout="constrained")
    runs = list(curves.groupby("variant"))
    for i, (v, g) in enumerate(runs):
        ev = g.dropna(subset=["val_loss"])
        axes[0].plot(ev.tokens, ev.val_loss, "o-", ms=3, color=f"C{i}", label=v.replace("lowrank-", ""))
    axes[0].set_xlabel("tokens")
    axes[0].set_ylabel("validation loss")
    axes[0].legend(fontsize=6)
    t = table[table.finetune != "none"]
    labels = [v.replace("lowrank-", "") for v, _ in runs]
    for ax, metric, ylabel in zip(
        axes[1:],
        ["tokens_per_s", "optimizer_state_mb", "trainable_params"],
        ["training tokens/s", "AdamW state (MB)", "trainable parameters"],
    ):
        vals = [t[(t.variant == v) & (t.metric == metric)].value.mean() for v, _ in runs]
        ax.bar(np.arange(len(runs)), vals, color=[f"C{i}" for i in range(len(runs))])
        ax.set_xticks(np.arange(len(runs)))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
    fig.suptitle(title)
    return fig

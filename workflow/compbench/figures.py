"""Figures for the report (matplotlib, Agg backend, atomic PNG writes)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .artifacts import atomic_path  # noqa: E402


def save(fig, path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def pretrain_curve(curve: pd.DataFrame, title: str):
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    ax[0].plot(curve["tokens"], curve["train_loss"], lw=0.8, alpha=0.6, label="train loss")
    ev = curve.dropna(subset=["val_loss"])
    ax[0].plot(ev["tokens"], ev["val_loss"], "o-", label="validation loss")
    ax[0].set_xlabel("tokens seen")
    ax[0].set_ylabel("cross-entropy (nats)")
    ax[0].legend()
    ax[1].plot(ev["tokens"], ev["val_ppl"], "o-", color="C1")
    ax[1].set_yscale("log")
    ax[1].set_xlabel("tokens seen")
    ax[1].set_ylabel("validation perplexity")
    fig.suptitle(title)
    return fig


def perplexity_table(table: pd.DataFrame):
    """A rendered table (model × variant rows, dataset columns) of perplexities."""
    t = table[table["metric"] == "perplexity"].pivot_table(index=["model", "variant"], columns="dataset", values="value")
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(t.columns), 0.6 + 0.32 * len(t)))
    ax.axis("off")
    cells = [[f"{v:.2f}" for v in row] for row in t.values]
    tab = ax.table(cellText=cells, rowLabels=[f"{m} / {v}" for m, v in t.index], colLabels=list(t.columns), loc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    ax.set_title("perplexity (lower is better)")
    return fig


def pruning_curves(table: pd.DataFrame, title: str):
    """Perplexity vs target sparsity, one line per method × allocation (unstructured)."""
    datasets = sorted(table["dataset"].dropna().unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), layout="constrained", squeeze=False)
    un = table[~table["allocation"].astype(str).str.contains(":") & (table["method"] != "dense")]
    styles = {"uniform": "-", "owl": "--", "alpha": "-."}
    for ax, ds in zip(axes[0], datasets):
        for i, (method, g1) in enumerate(un[un.dataset == ds].groupby("method")):
            for alloc, g in g1.groupby("allocation"):
                g = g.sort_values("target")
                ax.plot(g["target"], g["perplexity"], styles.get(alloc, ":"), marker="o", color=f"C{i}", label=f"{method} / {alloc}")
        dense = table[(table.method == "dense") & (table.dataset == ds)]["perplexity"]
        if len(dense):
            ax.axhline(dense.iloc[0], color="k", ls=":", lw=1, label="dense")
        ax.set_yscale("log")
        ax.set_xlabel("target sparsity")
        ax.set_ylabel(f"perplexity ({ds})")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def allocation_bars(table: pd.DataFrame, title: str):
    """Per-block sparsity of each allocation (taken from the pruned variants' recipes)."""
    import json

    un = table[~table["allocation"].astype(str).str.contains(":") & (table["method"] != "dense")].drop_duplicates("variant")
    targets = sorted(un["target"].unique())
    fig, axes = plt.subplots(1, len(targets), figsize=(3.2 * len(targets), 3.2), layout="constrained", squeeze=False, sharey=True)
    for ax, tgt in zip(axes[0], targets):
        g = un[un.target == tgt]
        shown = set()
        for _, row in g.iterrows():
            key = (row["allocation"], row["method"] if row["allocation"] == "alpha" else "")
            if key in shown or not isinstance(row.get("ratios"), str):
                continue
            shown.add(key)
            r = json.loads(row["ratios"])
            ax.plot([int(k) for k in r], list(r.values()), marker="o", label=" ".join(k for k in key if k))
        ax.set_title(f"target {tgt:g}")
        ax.set_xlabel("block")
    axes[0][0].set_ylabel("sparsity")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def pruning_paper_table(table: pd.DataFrame, anchors: dict, title: str):
    """Perplexity by (method, allocation) × sparsity, with the paper's anchors beside."""
    t = table[table["method"] != "dense"]
    ds = sorted(t["dataset"].dropna().unique())[0]
    t = t[t.dataset == ds].pivot_table(index=["method", "allocation"], columns="target", values="perplexity")
    cols = [f"{c:g}" for c in t.columns]
    cells = [[f"{v:.1f}" for v in row] for row in t.values]
    labels = [f"{m} / {a}" for m, a in t.index]
    paper = [anchors.get(f"{m}/{a}", "") for m, a in t.index]
    fig, ax = plt.subplots(figsize=(2.5 + 1.1 * (len(cols) + 1), 0.8 + 0.3 * len(t)))
    ax.axis("off")
    tab = ax.table(cellText=[c + [str(p)] for c, p in zip(cells, paper)], rowLabels=labels,
                   colLabels=cols + ["paper, LLaMA-7B @0.7"], loc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    dense = table[(table.method == "dense") & (table.dataset == ds)]["perplexity"]
    ax.set_title(f"{title}: perplexity ({ds}); dense {dense.iloc[0]:.1f} (paper dense {anchors.get('dense', '?')})" if len(dense) else title, fontsize=9)
    return fig

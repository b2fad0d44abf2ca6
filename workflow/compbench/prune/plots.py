"""Figures of the pruning line: sparsity curves, per-block allocation, the paper-shaped table, the epsilon sweep."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _grid(table: pd.DataFrame) -> pd.DataFrame:
    """The main pruning grid: without the epsilon-sweep variants (allocation `<rule>-eps<e>`)."""
    return table[~table["allocation"].astype(str).str.contains("-eps")]


def pruning_curves(table: pd.DataFrame, title: str):
    """Perplexity vs target sparsity, one line per method × allocation (unstructured)."""
    datasets = sorted(table["dataset"].dropna().unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), layout="constrained", squeeze=False)
    table = _grid(table)
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

    table = _grid(table)
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


PAPER_COLUMN = "paper, LLaMA-7B @0.7"


def paper_table(table: pd.DataFrame, anchors: dict) -> pd.DataFrame:
    """The AlphaPruning paper's table shape: perplexity (first evaluation data set) by
    method / allocation (rows, dense first) and target sparsity (columns; N:M patterns
    are their own rows at their realised sparsity), with the paper's anchors
    (``pruning.anchors``) beside when the config gives any. A cell the grid does not
    run is NaN (drawn as "–")."""
    table = _grid(table)
    ds = sorted(table["dataset"].dropna().unique())[0]
    t = table[table.dataset == ds]
    dense = t[t.method == "dense"]["perplexity"]
    pruned = t[t.method != "dense"]
    wide = pruned.pivot_table(index=["method", "allocation"], columns="target", values="perplexity", aggfunc="first")
    wide.columns = [f"{c:g}" for c in wide.columns]
    wide.index = [f"{m} / {a}" for m, a in wide.index]
    out = pd.concat([pd.DataFrame({c: [dense.iloc[0] if len(dense) else float("nan")] for c in wide.columns}, index=["dense"]), wide])
    if anchors:
        out[PAPER_COLUMN] = [anchors.get("dense", float("nan"))] + [anchors.get(k.replace(" / ", "/"), float("nan")) for k in wide.index]
    out.index.name = f"perplexity ({ds})"
    return out


def pruning_paper_table(table: pd.DataFrame, anchors: dict, title: str):
    """:func:`paper_table` drawn as a figure ("–": not run here / no paper number)."""
    t = paper_table(table, anchors)
    cells = [["–" if pd.isna(v) else f"{v:.1f}" for v in row] for row in t.values]
    fig, ax = plt.subplots(figsize=(2.5 + 1.1 * (len(t.columns) + 1), 0.8 + 0.3 * len(t)))
    ax.axis("off")
    tab = ax.table(cellText=cells, rowLabels=list(t.index), colLabels=list(t.columns), loc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    note = "" if anchors else "; no paper anchors in this config (pruning.anchors)"
    ax.set_title(f"{title}: {t.index.name}{note}", fontsize=9)
    return fig


def alpha_sweep(table: pd.DataFrame, title: str):
    """AlphaPruning's epsilon sweep: perplexity vs ε for `alpha` and the reversed
    control `alpha_rev`, one panel per (method, sparsity), uniform as a line."""
    sw = table[table["allocation"].astype(str).str.contains("-eps")].copy()
    if sw.empty:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no epsilon sweep configured (pruning.alpha_sweep)", ha="center", va="center")
        return fig
    ds = sorted(sw["dataset"].dropna().unique())[0]
    sw = sw[sw.dataset == ds]
    sw["rule"] = sw["allocation"].str.split("-eps").str[0]
    sw["epsilon"] = sw["allocation"].str.split("-eps").str[1].astype(float)
    panels = sorted(set(zip(sw["method"], sw["target"])))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), layout="constrained", squeeze=False)
    for ax, (method, tgt) in zip(axes[0], panels):
        g = sw[(sw.method == method) & (sw.target == tgt)]
        for rule, gg in g.groupby("rule"):
            gg = gg.sort_values("epsilon")
            ax.plot(gg["epsilon"], gg["perplexity"], marker="o", label=rule)
        uni = table[(table.method == method) & (table.allocation == "uniform") & (table.target == tgt) & (table.dataset == ds)]
        if len(uni):
            ax.axhline(uni["perplexity"].iloc[0], color="k", ls=":", lw=1, label="uniform")
        ax.set_title(f"{method} @ {tgt:g}", fontsize=9)
        ax.set_xlabel("epsilon")
    axes[0][0].set_ylabel(f"perplexity ({ds})")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title)
    return fig

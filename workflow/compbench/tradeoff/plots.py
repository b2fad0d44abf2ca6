"""The trade-off figure: every variant of a model on the plane stored bytes × quality."""

from __future__ import annotations

import pandas as pd

from compbench.figures import plt

MIB = 2**20
MARKERS = "osD^v<>ph*XP"


def _styles(table: pd.DataFrame) -> dict:
    """(line, method) -> (colour, marker): a colour per line, a marker per method within it."""
    out = {}
    for i, (line, g) in enumerate(table.groupby("line", sort=True)):
        for j, method in enumerate(sorted(g["method"].unique())):
            out[(line, method)] = (f"C{i % 10}", MARKERS[j % len(MARKERS)])
    return out


def _panel(ax, table: pd.DataFrame, y: str, front: str, styles: dict, minimise: bool):
    for (line, method), g in table.groupby(["line", "method"], sort=True):
        colour, marker = styles[(line, method)]
        ax.scatter(g["bytes"] / MIB, g[y], s=28, color=colour, marker=marker, alpha=0.85, label=f"{line}: {method}")
    f = table[table[front]].sort_values("bytes")
    if len(f):
        ax.step(f["bytes"] / MIB, f[y], where="post", color="k", lw=1, zorder=0, label="Pareto front")
        ax.scatter(f["bytes"] / MIB, f[y], s=90, facecolors="none", edgecolors="k", lw=0.8)
        for r in f.itertuples():
            ax.annotate(
                r.variant, (r.bytes / MIB, getattr(r, y)), fontsize=6, xytext=(3, 3 if minimise else -8), textcoords="offset points"
            )
    ax.set_xlabel("stored bytes of the decoder linears (MiB)")
    ax.grid(alpha=0.3, which="both")


def plane(table: pd.DataFrame, dataset: str, title: str):
    """Bytes vs perplexity on ``dataset`` (log y; the front: no variant is both smaller and
    better), and bytes vs mean zero-shot accuracy where measured."""
    styles = _styles(table)
    zs = table["zeroshot_acc"].notna().any()
    fig, axes = plt.subplots(1, 2 if zs else 1, figsize=(15 if zs else 9, 5.5), layout="constrained", squeeze=False)
    y = f"perplexity_{dataset}"
    _panel(axes[0, 0], table, y, "on_front", styles, True)
    axes[0, 0].set_yscale("log")
    axes[0, 0].set_ylabel(f"perplexity ({dataset}, log scale; lower is better)")
    if zs:
        _panel(axes[0, 1], table[table["zeroshot_acc"].notna()], "zeroshot_acc", "on_front_zeroshot", styles, False)
        axes[0, 1].set_ylabel("mean zero-shot accuracy (higher is better)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7)
    fig.suptitle(title)
    return fig

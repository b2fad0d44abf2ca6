"""The calibration-data study's figure: accuracy change vs dense per calibration set and task."""

from __future__ import annotations


def heatmap(tidy, path, metric: str = "acc", title: str = "") -> None:
    """Calibration set (rows) × evaluation task (columns), colour = accuracy change vs dense
    (percentage points), one panel per pruning method and sparsity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    acc = tidy[(tidy.metric == metric) & (tidy.method != "dense")].copy()
    acc["set"] = [s if f == "raw" else f"{s}-{f}" for s, f in zip(acc.source, acc.format)]
    panels = sorted({(m, s) for m, s in zip(acc.method, acc.sparsity)})
    tasks = sorted(acc.dataset.unique())
    dense = tidy[(tidy.metric == metric) & (tidy.method == "dense")].groupby("dataset").value.mean()
    fig, axes = plt.subplots(
        1,
        max(1, len(panels)),
        figsize=(1.2 + 1.3 * len(tasks) * max(1, len(panels)), 1.2 + 0.45 * acc.set.nunique()),
        squeeze=False,
        constrained_layout=True,
    )
    lim = max(1.0, float(np.nanmax(np.abs(acc.delta))) * 100) if len(acc) else 1.0
    for ax, (m, sp) in zip(axes[0], panels):
        sub = acc[(acc.method == m) & (acc.sparsity == sp)].pivot_table(index="set", columns="dataset", values="delta", aggfunc="mean")
        sub = sub.reindex(columns=tasks) * 100
        im = ax.imshow(sub.values, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(tasks)), [f"{t}\n(dense {dense.get(t, np.nan) * 100:.0f}%)" for t in tasks], fontsize=7)
        ax.set_yticks(range(len(sub.index)), sub.index, fontsize=7)
        for i in range(sub.shape[0]):
            for j in range(sub.shape[1]):
                v = sub.values[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=6)
        ax.set_title(f"{m} @ {sp:g}", fontsize=9)
    fig.colorbar(im, ax=axes[0, -1], label=f"{metric} change vs dense (points)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=130)
    plt.close(fig)

"""The calibration-data study (Bandari et al., EMNLP 2024): its tables and its figure.

The grid (which calibration sets, methods, sparsities) is :mod:`compbench.calibration_study.grid`.
"""

from __future__ import annotations

from compbench.calibration_catalogue import CATALOGUE
from compbench.calibration_study.grid import parse_variant

# ------------------------------------------------------------------- tables


def table(records, perplexity, zeroshot, dense_variant: str = "dense"):
    """The study's tidy table: one row per (model, variant, metric, dataset), with
    the cell's coordinates and, for accuracies, the change vs the dense model.

    ``records``: prune records of the cells; ``perplexity`` / ``zeroshot``: the
    spine's tidy rows (model, variant, dataset, metric, value, wall_s …)."""
    import pandas as pd

    zs = zeroshot[zeroshot.metric.isin(["acc", "acc_norm", "exact_match"])]
    ppl = perplexity[perplexity.metric == "perplexity"]
    cols = ["model", "variant", "dataset", "metric", "value"]
    rows = pd.concat(
        [zs[cols + ["wall_s"]].rename(columns={"wall_s": "eval_s"}), ppl[cols + ["wall_s"]].rename(columns={"wall_s": "eval_s"})]
    )
    dense = rows[rows.variant == dense_variant].set_index(["model", "dataset", "metric"]).value.rename("dense")
    rows = rows.join(dense, on=["model", "dataset", "metric"])
    rows["delta"] = rows.value - rows.dense
    coords = []
    for v in rows.variant:
        p = parse_variant(v)
        coords.append(
            {
                "source": p["set"].split("-")[0],
                "format": (p["set"].split("-") + ["raw"])[1],
                "n_samples": int(p["n"]),
                "seq_len": int(p["len"]),
                "seed": int(p["seed"]),
                "method": p["method"],
                "sparsity": float(p["sparsity"]),
            }
            if p
            else {"source": "(dense)", "format": "", "n_samples": None, "seq_len": None, "seed": None, "method": "dense", "sparsity": 0.0}
        )
    rows = pd.concat([rows.reset_index(drop=True), pd.DataFrame(coords)], axis=1)
    rows["category"] = [CATALOGUE[s][0] if s in CATALOGUE else "dense" for s in rows.source]
    if len(records):
        rec = records[["model", "variant", "sparsity", "wall_s"]].rename(columns={"sparsity": "realised_sparsity", "wall_s": "prune_s"})
        rows = rows.merge(rec, on=["model", "variant"], how="left")
    return rows


def paper_table(tidy, metric: str = "acc"):
    """The paper's shape: one row per (method, sparsity, calibration source, format),
    one column per task (accuracy, %, mean over seeds), their mean, and the perplexity."""
    import pandas as pd

    t = tidy.copy()
    t["format"] = t["format"].fillna("")
    idx = ["method", "sparsity", "category", "source", "format"]
    wide = t[t.metric == metric].pivot_table(index=idx, columns="dataset", values="value", aggfunc="mean") * 100
    wide["mean"] = wide.mean(axis=1)
    ppl = t[t.metric == "perplexity"].pivot_table(index=idx, columns="dataset", values="value", aggfunc="mean")
    ppl.columns = [f"ppl_{c}" for c in ppl.columns]
    out = wide.join(ppl).reset_index()
    order = {"dense": 0, "pretraining": 1, "arithmetic": 2, "nli": 3, "commonsense": 4, "control": 5}
    out["_m"] = (out.method != "dense").astype(int)
    out["_c"] = out.category.map(order)
    out = out.sort_values(["_m", "method", "sparsity", "_c", "source", "format"]).drop(columns=["_m", "_c"])
    return pd.DataFrame(out).reset_index(drop=True)


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

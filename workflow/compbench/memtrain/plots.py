"""The memory-efficient training line's table and figures."""

from __future__ import annotations

import pandas as pd

from compbench.figures import plt

ORDER = ["adamw", "lora", "galore", "qgalore", "qgalore_nosr", "qgalore_fixed"]
MIB = 2**20


def add_spine_perplexity(summary: pd.DataFrame, spine: pd.DataFrame) -> pd.DataFrame:
    """Append the spine's perplexity of each fine-tuned variant (``train-<v>``) and of the
    model before fine-tuning (variant ``pretrained``) as rows of metric ``perplexity_<dataset>``."""
    if spine.empty:
        return summary
    s = spine[spine["metric"] == "perplexity"]
    rows = []
    for _, r in s.iterrows():
        v = r["variant"]
        if v == "dense":
            v = "pretrained"
        elif v.startswith("train-"):
            v = v[len("train-") :]
        else:
            continue
        rows.append({"regime": "finetune", "model": r["model"], "variant": v, "metric": f"perplexity_{r['dataset']}", "value": r["value"]})
    return pd.concat([summary, pd.DataFrame(rows)], ignore_index=True)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    w = table.pivot_table(index=["regime", "model", "variant"], columns="metric", values="value", aggfunc="first").reset_index()
    w["order"] = w["variant"].map({v: i for i, v in enumerate(ORDER)}).fillna(-1)
    return w.sort_values(["regime", "model", "order"]).drop(columns="order")


def memory_figure(table: pd.DataFrame):
    """Top: test perplexity vs exact bytes; bottom: the bytes by category, per run."""
    w = wide(table).dropna(subset=["bytes_total"])
    runs = list(w.groupby(["regime", "model"]))
    n = max(1, len(runs))
    fig, axes = plt.subplots(2, n, figsize=(5.2 * n, 7.5), layout="constrained", squeeze=False)
    for ax, ((regime, model), g) in zip(axes[1], runs):
        bottom = None
        for j, cat in enumerate(["weights", "gradients", "optimizer_state", "projection"]):
            vals = g[f"bytes_{cat}"].to_numpy() / MIB
            ax.bar(g["variant"], vals, bottom=bottom, label=cat.replace("_", " "), color=f"C{j}")
            bottom = vals if bottom is None else bottom + vals
        ax.set_ylabel("MiB (exact, from tensors)")
        ax.set_ylim(0, 1.3 * float(bottom.max()))  # room for the legend above the tallest bar
        ax.tick_params(axis="x", labelrotation=30)
        ax.legend(fontsize=8, ncols=2, loc="upper right")
    for ax, ((regime, model), g) in zip(axes[0], runs):
        for i, (_, r) in enumerate(g.iterrows()):
            ax.scatter(
                r["bytes_total"] / MIB, r["test_perplexity"], s=40, color=f"C{ORDER.index(r['variant']) if r['variant'] in ORDER else 9}"
            )
            ax.annotate(r["variant"], (r["bytes_total"] / MIB, r["test_perplexity"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("weights + gradients + optimizer state + projections (MiB, exact)")
        ppl = g["test_perplexity"].dropna()
        if len(ppl) and ppl.max() > 10 * ppl.min():  # e.g. LoRA from scratch: keep the others readable
            ax.set_yscale("log")
        ax.set_ylabel("test perplexity")
        ax.set_title(f"{regime}: {model}")
    return fig


def curves_figure(curves: pd.DataFrame):
    runs = list(curves.groupby(["regime", "model"]))
    fig, axes = plt.subplots(1, max(1, len(runs)), figsize=(5.2 * max(1, len(runs)), 4), layout="constrained", squeeze=False)
    for ax, ((regime, model), g) in zip(axes[0], runs):
        for v, c in g.groupby("variant"):
            col = f"C{ORDER.index(v) if v in ORDER else 9}"
            ax.plot(c["step"], c["train_loss"].rolling(5, min_periods=1).mean(), lw=0.8, alpha=0.5, color=col)
            ev = c.dropna(subset=["val_loss"])
            ax.plot(ev["step"], ev["val_loss"], "o-", ms=3, color=col, label=v)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (thin: train, 5-step mean; dots: held-out)")
        ax.set_title(f"{regime}: {model}")
        ax.legend(fontsize=8)
    return fig


def svd_figure(curves: pd.DataFrame):
    c = curves[curves["variant"].isin(["galore", "qgalore", "qgalore_nosr", "qgalore_fixed"])]
    runs = list(c.groupby(["regime", "model"]))
    fig, axes = plt.subplots(1, max(1, len(runs)), figsize=(5.2 * max(1, len(runs)), 4), layout="constrained", squeeze=False)
    for ax, ((regime, model), g) in zip(axes[0], runs):
        for v, r in g.groupby("variant"):
            ax.step(r["step"], r["svd_count"], where="post", label=v, color=f"C{ORDER.index(v)}")
        ax.set_xlabel("step")
        ax.set_ylabel("SVDs performed (all layers, cumulative)")
        ax.set_title(f"{regime}: {model} — fixed vs adaptive refresh")
        ax.legend(fontsize=8)
    return fig

"""Figures for the report (matplotlib, Agg backend, atomic PNG writes)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from compbench.artifacts import atomic_path  # noqa: E402


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

"""Figures of the spectra stage: per-block alpha, and fitted ESDs of a few matrices.

Torch-free (the figure job starts without torch): eigenvalues come as numpy arrays
(:func:`compbench.artifacts.load_arrays`), the peak window is :func:`peak_window`'s
numpy version of :func:`compbench.spectra.esd.peak_window`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compbench.figures import plt

PEAK_BINS = 100  # compbench.spectra.esd.PEAK_BINS (tests/spectra/test_spectra.py compares both)

RULE_STYLE = {
    "full": dict(color="C0", marker="o", label="full scan (WeightWatcher alpha)"),
    "mid": dict(color="C1", marker="s", label="xmin = median (alpha_mid)"),
    "peak": dict(color="C3", marker="^", label="xmin peak (AlphaPruning alpha_peak)"),
    "peak_corrected": dict(color="C2", marker="v", ls="--", label="xmin peak, corrected lower bound (ours)"),
}


def block_alpha(blocks: pd.DataFrame, rules, title: str):
    """Mean alpha of each block, one line per xmin rule."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for r in rules:
        style = RULE_STYLE.get(r, dict(label=r))
        ax.plot(blocks["block"], blocks[f"alpha_{r}"], **style)
    ax.set_xlabel("decoder block")
    ax.set_ylabel("mean power-law alpha of the block's linears")
    ax.set_xticks(blocks["block"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return fig


def pick_examples(matrices: pd.DataFrame, rule: str, k: int) -> list[str]:
    """k matrices spread over the range of alpha under ``rule`` (lowest, ..., highest)."""
    m = matrices.dropna(subset=[f"alpha_{rule}"]).sort_values(f"alpha_{rule}")
    if m.empty:
        m = matrices
    pos = np.unique(np.round(np.linspace(0, len(m) - 1, min(k, len(m)))).astype(int))
    return m["module"].iloc[pos].tolist()


def peak_window(lam: np.ndarray) -> tuple[float, float, float]:
    """(peak p, log10(0.95·p), 1.5·p): the ``xmin_peak`` window of
    :func:`compbench.spectra.esd.peak_window` (100 bins of log10 λ over [min, max],
    first fullest bin, p = 10^its left edge), in numpy float32 like the reference's
    ``torch.histc``. For the figure's shading only; the fit uses the torch version."""
    h = np.log10(np.asarray(lam, dtype=np.float32))
    lo, hi = float(h.min()), float(h.max())
    counts, edges = np.histogram(h, bins=PEAK_BINS, range=(lo, hi) if hi > lo else (lo, lo + 1e-6))
    peak = 10 ** float(np.float32(edges[int(np.argmax(counts))]))
    return peak, float(np.log10(0.95 * peak)), 1.5 * peak


def esd_examples(matrices: pd.DataFrame, eigs: dict, names: list[str], rules, default_rule: str, title: str):
    """For each matrix: the ESD (histogram of log10 λ, with the peak window) and the
    empirical CCDF on log-log axes with each rule's fitted power law above its xmin:
    P(Λ > λ) = (tail / N)·(λ / xmin)^(1 − α)."""
    k = len(names)
    fig, axes = plt.subplots(2, k, figsize=(3.6 * k, 6.4), squeeze=False)
    rows = matrices.set_index("module")
    for c, name in enumerate(names):
        lam = np.sort(np.asarray(eigs[name], dtype=np.float64))
        lam = lam[lam > 0]
        n = len(lam)
        row = rows.loc[name]
        top, bot = axes[0, c], axes[1, c]
        top.hist(np.log10(lam), bins=100, color="0.6")
        peak, _, upper = peak_window(lam)
        top.axvspan(np.log10(0.95 * peak), np.log10(upper), color="C3", alpha=0.15, label="0.95-1.5 x peak")
        top.set_xlabel("log10 eigenvalue")
        top.set_title(f"{name.split('layers.')[-1]}  ({int(row['rows'])}x{int(row['cols'])})", fontsize=9)
        ccdf = 1.0 - np.arange(n) / n  # P(Λ ≥ λ_i)
        bot.loglog(lam, ccdf, ".", ms=2.5, color="0.35", label="empirical CCDF")
        for r in rules:
            a, xmin, tail = row[f"alpha_{r}"], row[f"xmin_{r}"], row[f"tail_{r}"]
            if not np.isfinite(a):
                continue
            x = lam[lam >= xmin]
            style = RULE_STYLE.get(r, {})
            bot.loglog(
                x, tail / n * (x / xmin) ** (1 - a), color=style.get("color"), ls=style.get("ls", "-"), lw=1.4, label=f"{r}: alpha={a:.2f}"
            )
            if r == default_rule:
                bot.axvline(xmin, color=style.get("color"), lw=0.8, ls=":")
        bot.set_xlabel("eigenvalue λ")
        bot.legend(fontsize=7)
        bot.grid(alpha=0.3, which="both")
        if c == 0:
            top.set_ylabel("count")
            top.legend(fontsize=7)
            bot.set_ylabel("P(Λ ≥ λ)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig

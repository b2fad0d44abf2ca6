"""Figures of the speech line: WER vs parameters (LR-SMS), WER vs training time (DDP-ASR),
mask density over steps (MSRS). Points are means over seeds; with a summary table the error
bars are its 95 % intervals (compbench.speech.summary)."""

from __future__ import annotations

import pandas as pd

from compbench.figures import plt


def _wide(table: pd.DataFrame) -> pd.DataFrame:
    t = table[table.metric != "info"].copy()
    t["value"] = pd.to_numeric(t["value"])
    return t.pivot_table(index=["run", "variant"], columns="metric", values="value").reset_index()


def _errorbars(ax, x, runs, wide, summary, **kw):
    """Test WER (%) of ``runs`` at ``x``, with the summary's 95 % interval as error bars where it has one."""
    y = 100 * wide.set_index("run").loc[list(runs), "test_wer"].to_numpy()
    yerr = None
    if summary is not None and len(runs):
        s = summary[summary.metric == "test_wer"].set_index("run").reindex(list(runs))
        lo, hi = 100 * pd.to_numeric(s.ci_lo).to_numpy(), 100 * pd.to_numeric(s.ci_hi).to_numpy()
        if pd.notna(lo).all() and pd.notna(hi).all():
            yerr = [(y - lo).clip(min=0), (hi - y).clip(min=0)]
    ax.errorbar(x, y, yerr=yerr, linestyle="none", capsize=3, **kw)


def _empty(ax, what):
    ax.text(0.5, 0.5, f"no {what} runs in this config", ha="center", va="center", transform=ax.transAxes)


def lrsms(table: pd.DataFrame, summary: pd.DataFrame | None = None):
    w = _wide(table)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    d = w[w.variant == "dense"]
    _errorbars(ax, d.params / 1e3, d.run, w, summary, marker="*", ms=14, color="k", label="dense", zorder=3)
    lr = w[w.variant == "lrsms"]
    if lr.empty:
        _empty(ax, "LR-SMS")
    for init, marker in (("svd", "o"), ("random", "x")):
        s = lr[lr.run.str.endswith(f"-{init}")]
        _errorbars(ax, s.params / 1e3, s.run, w, summary, marker=marker, ms=8, label=f"LR-SMS ({init} init)")
        for _, r in s.iterrows():
            ax.annotate(r.run.split("-")[1], (r.params / 1e3, 100 * r.test_wer), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("parameters (thousands)")
    ax.set_ylabel("test WER (%), unseen voices")
    ax.legend(fontsize=8)
    return fig


def ddp(table: pd.DataFrame, summary: pd.DataFrame | None = None):
    w = _wide(table)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    d = w[w.variant == "dense"]
    s = w[w.variant == "ddp"]
    for a, x, lab in ((ax[0], "train_s", "training wall time (s)"), (ax[1], "audio_s", "audio seconds processed")):
        _errorbars(a, d[x], d.run, w, summary, marker="*", ms=14, color="k", label="dense (100 %)", zorder=3)
        _errorbars(a, s[x], s.run, w, summary, marker="o", ms=7, label="DDP-ASR")
        for _, r in s.iterrows():
            a.annotate(r.run.replace("ddp-", ""), (r[x], 100 * r.test_wer), textcoords="offset points", xytext=(4, 4), fontsize=8)
        a.set_xlabel(lab)
        a.set_ylabel("test WER (%)")
        if s.empty:
            _empty(a, "DDP")
    ax[0].legend(fontsize=8)
    return fig


def msrs(curves: list[pd.DataFrame], table: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    if not curves:
        _empty(ax, "MSRS")
    for c in curves:
        c = c.dropna(subset=["density"]) if "density" in c else c.iloc[:0]
        if c.empty:
            continue
        run = c.run.iloc[0]
        name = f"{run} seed {int(c.seed.iloc[0])}" if "seed" in c else run
        wer = table[(table.run == run) & (table.metric == "test_wer") & ((table.seed == c.seed.iloc[0]) if "seed" in c else True)].value
        ax.plot(c.step, c.density, "o-", ms=3, label=f"{name} (test WER {100 * float(wer.iloc[0]):.1f} %)" if len(wer) else name)
    ax.set_xlabel("training step")
    ax.set_ylabel("mask density (kept fraction)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return fig

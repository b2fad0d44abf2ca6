"""The calibration-data study's paper claims (Bandari et al., EMNLP 2024),
decided on this run's tidy study table (compbench.verdicts)."""

from __future__ import annotations

from functools import partial

from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable

PAPER = "Bandari et al., EMNLP 2024"
SOURCE = "Bandari et al. (EMNLP 2024), abstract, findings (2) and (4): Wanda / SparseGPT on LLaMA models"
claim = partial(Claim, line="calibration_study", paper=PAPER, source=SOURCE)  # every claim of this line


def _accuracy(table):
    """Mean zero-shot accuracy (%) over the tasks, per pruned cell (variant)."""
    t = table[(table["metric"] == "acc") & (table["method"] != "dense")]
    return t.groupby(["variant", "source", "format", "category", "method"], dropna=False)["value"].mean().mul(100).reset_index()


def arithmetic_on_par(read, path: str) -> Outcome:
    """Finding (2): arithmetic calibration data on par with or better than pre-training text,
    per method; the difference is the smallest (arithmetic − pre-training) over the methods."""
    acc = _accuracy(read(path))
    parts, diffs = [], []
    for method, g in acc.groupby("method"):
        ar, pt = g[g.category == "arithmetic"]["value"], g[g.category == "pretraining"]["value"]
        if len(ar) and len(pt):
            parts.append(f"{method}: arithmetic {ar.mean():.1f} % vs pre-training {pt.mean():.1f} %")
            diffs.append(ar.mean() - pt.mean())
    if not diffs:
        return untestable("the study has no arithmetic and pre-training calibration sets side by side")
    return Outcome(numbers="; ".join(parts) + " (mean zero-shot accuracy)", diff=min(diffs), strict=False)


def icl_helps(read, path: str) -> Outcome:
    """Finding (4), its first half: ICL-formatted calibration data (concat) beats the
    zero-shot format (zero) for every source and method; the difference is the smallest gain."""
    acc = _accuracy(read(path))
    parts, diffs = [], []
    for (source, method), g in acc.groupby(["source", "method"]):
        f = g.set_index("format")["value"]
        if "concat" in f and "zero" in f:
            parts.append(f"{source}/{method}: zero {f['zero']:.1f} → ICL {f['concat']:.1f} %")
            diffs.append(float(f["concat"] - f["zero"]))
    if not diffs:
        return untestable("no source runs both the zero and the concat (ICL) format")
    return Outcome(numbers="; ".join(parts), diff=min(diffs))


def claims(config: dict) -> list[Claim]:
    out = []
    for m in config.get("models", {}):
        path = f"{RESULTS}/tables/calibration-{m}.csv"
        link = f"{RESULTS}/figures/calibration-heatmap-{m}.png"
        out += [
            claim(
                id=f"calibration/arithmetic-on-par/{m}",
                statement=f"Arithmetic calibration data prunes as well as or better than pre-training text ({m}, zero-shot accuracy)",
                anchor="on par or better (a finding; no single number)",
                link=link,
                inputs=(path,),
                evaluate=lambda read, path=path: arithmetic_on_par(read, path),
            ),
            claim(
                id=f"calibration/icl-helps/{m}",
                statement=f"In-context-learning calibration samples beat zero-shot ones for every source ({m}, zero-shot accuracy)",
                anchor="ICL helps every data category (a finding; no single number)",
                link=link,
                inputs=(path,),
                evaluate=lambda read, path=path: icl_helps(read, path),
            ),
        ]
    return out

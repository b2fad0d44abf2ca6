"""The calibration-data study's paper claims (Bandari et al., EMNLP 2024),
decided on this run's tidy study table (compbench.verdicts), with a paired bootstrap
interval over each task's zero-shot items (lm-eval's per-item correctness,
compbench.verdicts.accuracy_interval). Each claim's difference is the smallest over
several comparisons; its interval is the bootstrap of that smallest difference."""

from __future__ import annotations

from functools import partial

from compbench.calibration_study.grid import lm_eval_items
from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, accuracy_interval, accuracy_items, untestable, with_summary

PAPER = "Bandari et al., EMNLP 2024"
SOURCE = "Bandari et al. (EMNLP 2024), abstract, findings (2) and (4): Wanda / SparseGPT on LLaMA models"
claim = partial(Claim, line="calibration_study", paper=PAPER, source=SOURCE)  # every claim of this line


def _accuracy(table):
    """Mean zero-shot accuracy (%) over the tasks, per pruned cell (variant)."""
    t = table[(table["metric"] == "acc") & (table["method"] != "dense")]
    return t.groupby(["variant", "source", "format", "category", "method"], dropna=False)["value"].mean().mul(100).reset_index()


def _smallest_gain(read, items_paths, groups, point: float):
    """The bootstrap of min over ``groups`` ((better variants, worse variants) pairs) of the
    mean accuracy of the first minus that of the second."""

    def contrast(acc):
        import numpy as np  # lazily: claims import without numpy (the DAG build)

        return np.min([np.mean([acc[v] for v in a], 0) - np.mean([acc[v] for v in b], 0) for a, b in groups], axis=0)

    variants = [v for a, b in groups for v in (*a, *b)]
    return accuracy_interval(accuracy_items(read, items_paths), variants, point, contrast)


def arithmetic_on_par(read, path: str, items_paths=()) -> Outcome:
    """Finding (2): arithmetic calibration data on par with or better than pre-training text,
    per method; the difference is the smallest (arithmetic − pre-training) over the methods."""
    acc = _accuracy(read(path))
    parts, diffs, groups = [], [], []
    for method, g in acc.groupby("method"):
        ar, pt = g[g.category == "arithmetic"], g[g.category == "pretraining"]
        if len(ar) and len(pt):
            parts.append(f"{method}: arithmetic {ar['value'].mean():.1f} % vs pre-training {pt['value'].mean():.1f} %")
            diffs.append(ar["value"].mean() - pt["value"].mean())
            groups.append((list(ar["variant"]), list(pt["variant"])))
    if not diffs:
        return untestable("the study has no arithmetic and pre-training calibration sets side by side")
    noise = _smallest_gain(read, items_paths, groups, min(diffs))
    return with_summary("; ".join(parts) + " (mean zero-shot accuracy)", min(diffs), noise, strict=False)


def icl_helps(read, path: str, items_paths=()) -> Outcome:
    """Finding (4), its first half: ICL-formatted calibration data (concat) beats the
    zero-shot format (zero) for every source and method; the difference is the smallest gain."""
    acc = _accuracy(read(path))
    parts, diffs, groups = [], [], []
    for (source, method), g in acc.groupby(["source", "method"]):
        concat, zero = g[g["format"] == "concat"], g[g["format"] == "zero"]
        if len(concat) and len(zero):
            c, z = concat["value"].mean(), zero["value"].mean()
            parts.append(f"{source}/{method}: zero {z:.1f} → ICL {c:.1f} %")
            diffs.append(float(c - z))
            groups.append((list(concat["variant"]), list(zero["variant"])))
    if not diffs:
        return untestable("no source runs both the zero and the concat (ICL) format")
    return with_summary("; ".join(parts), min(diffs), _smallest_gain(read, items_paths, groups, min(diffs)))


def claims(config: dict) -> list[Claim]:
    out = []
    for m in config.get("models", {}):
        path = f"{RESULTS}/tables/calibration-{m}.csv"
        items = tuple(lm_eval_items(config, m))
        link = f"{RESULTS}/figures/calibration-heatmap-{m}.png"
        out += [
            claim(
                id=f"calibration/arithmetic-on-par/{m}",
                statement=f"Arithmetic calibration data prunes as well as or better than pre-training text ({m}, zero-shot accuracy)",
                anchor="on par or better (a finding; no single number)",
                link=link,
                inputs=(path, *items),
                evaluate=lambda read, path=path, items=items: arithmetic_on_par(read, path, items),
            ),
            claim(
                id=f"calibration/icl-helps/{m}",
                statement=f"In-context-learning calibration samples beat zero-shot ones for every source ({m}, zero-shot accuracy)",
                anchor="ICL helps every data category (a finding; no single number)",
                link=link,
                inputs=(path, *items),
                evaluate=lambda read, path=path, items=items: icl_helps(read, path, items),
            ),
        ]
    return out

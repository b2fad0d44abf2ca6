"""The PASS line over seeds (torch-free): every run's per-image correctness, the summary table
(per method, budget and metric: mean, sd and 95 % interval) and the paired comparison of two
runs that the claims use (compbench.stats).

An accuracy's interval: t over the seeds' accuracies with >= 3 seeds, else a bootstrap over the
test images (the same images for every run and seed, resampled with the same draws when two runs
are compared: a paired bootstrap)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compbench import stats


def _at(t: pd.DataFrame, method: str, target: float) -> pd.DataFrame:
    return t[(t["method"] == method) & (t["target"].astype(float).round(6) == round(float(target), 6))]


def correct(items: pd.DataFrame, method: str, target: float, seeds) -> np.ndarray:
    """Correctness [n_seeds, n_images] of one run (method, MACs budget; dense: target 1.0)."""
    g = _at(items, method, target)
    out = []
    for s in seeds:
        row = g[g.seed.astype(int) == int(s)]
        if len(row) != 1:
            raise ValueError(f"per-image results of {method} at {target:g}, seed {s}: {len(row)} rows, expected 1")
        out.append(stats.unbits(row["correct"].iloc[0]))
    if len({len(c) for c in out}) > 1:
        raise ValueError(f"{method} at {target:g}: seeds were evaluated on different numbers of test images")
    return np.stack(out)


def seeds_of(items: pd.DataFrame, *runs: tuple[str, float]) -> list[int]:
    """The seeds every given run has."""
    have = [set(_at(items, m, t).seed.astype(int)) for m, t in runs]
    return sorted(set.intersection(*have)) if have else []


def accuracy(items: pd.DataFrame, method: str, target: float, seeds) -> stats.Summary:
    c = correct(items, method, target, seeds)
    return stats.summarise(c.mean(1), stats.seed_mean_ratio(c), c.shape[1], what="test images")


def difference(items: pd.DataFrame, a: tuple[str, float], b: tuple[str, float], seeds=None) -> stats.Summary:
    """accuracy(a) − accuracy(b) on the same test images, over the seeds both runs have (default):
    per-seed differences for the t-interval, a paired bootstrap over images otherwise."""
    seeds = seeds_of(items, a, b) if seeds is None else seeds
    if not seeds:
        raise ValueError(f"runs {a} and {b} share no seed")
    ca, cb = correct(items, *a, seeds), correct(items, *b, seeds)
    if ca.shape != cb.shape:
        raise ValueError(f"runs {a} and {b} were evaluated on different numbers of test images")
    ra, rb = stats.seed_mean_ratio(ca), stats.seed_mean_ratio(cb)
    return stats.summarise(ca.mean(1) - cb.mean(1), lambda idx: ra(idx) - rb(idx), ca.shape[1], what="test images")


def summary(table: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per method, budget and metric: n_seeds, mean, sd, ci_lo, ci_hi, interval (accuracy: the
    bootstrap over test images when seeds are too few for t)."""
    t = table.copy()
    t["value"] = pd.to_numeric(t["value"])
    rows = []
    for (method, target, metric), g in t.groupby(["method", "target", "metric"], sort=False):
        g = g.sort_values("seed")
        seeds = list(g.seed.astype(int))
        s = accuracy(items, method, target, seeds) if metric == "accuracy" else stats.summarise(g.value.to_numpy(float))
        rows.append({"method": method, "target": target, "metric": metric, "seeds": " ".join(map(str, seeds)), **s.row()})
    return pd.DataFrame(rows)

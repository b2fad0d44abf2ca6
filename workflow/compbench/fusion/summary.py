"""The MoE-fusion line over seeds (torch-free): hypervolume per seed and method, the summary
table (per method and metric: mean, sd and 95 % interval) and the paired comparison of two
methods that the claims use (compbench.stats).

A hypervolume's interval: t over the seeds' hypervolumes with >= 3 seeds, else a bootstrap over
the test items: each resample draws every task's test items with replacement, recomputes every
model's accuracy on them (the same draw for every model and method: paired), then each method's
hypervolume, averaged over the seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compbench import stats
from compbench.fusion import pareto


def _seed_rows(points: pd.DataFrame, seed: int) -> pd.DataFrame:
    return points[points.seed.astype(int) == int(seed)]


def per_seed(points: pd.DataFrame, tasks: list[str], reference) -> pd.DataFrame:
    """Per seed and method: models, non-dominated models, hypervolume, best accuracy per task."""
    out = []
    for s in sorted(points.seed.astype(int).unique()):
        _, hv = pareto.fronts(_seed_rows(points, s), tasks, reference)
        out.append(hv.assign(seed=s))
    return pd.concat(out, ignore_index=True)


def correct(points: pd.DataFrame, seed: int, method: str, tasks: list[str]) -> list[np.ndarray]:
    """Per task, the correctness [n_models, n_items] of a method's models on one seed (models in setting order)."""
    t = _seed_rows(points, seed)
    t = t[(t.method == method) & (t.metric == "accuracy")]
    if t.empty:
        raise ValueError(f"no evaluated {method} models for seed {seed}")
    out = []
    for task in tasks:
        g = t[t.task == task].sort_values("setting")
        if list(g.setting) != sorted(t.setting.unique()):
            raise ValueError(f"seed {seed}, {method}: the models evaluated on {task} differ from the others")
        out.append(np.stack([stats.unbits(c) for c in g["correct"]]))
    return out


def _hv_stat(points, method, tasks, reference, seeds) -> tuple:
    """(per-seed hypervolumes, statistic over item draws, item counts per task) of one method."""
    per = [correct(points, s, method, tasks) for s in seeds]
    sizes = tuple(c.shape[1] for c in per[0])
    if any(tuple(c.shape[1] for c in p) != sizes for p in per):
        raise ValueError(f"{method}: seeds were evaluated on different numbers of test items")

    def hv(acc_by_task):  # [n_models] per task -> hypervolume
        return pareto.hypervolume_2d(np.stack(acc_by_task, axis=1), reference)

    values = np.array([hv([c.mean(1) for c in p]) for p in per])

    def stat(idx):
        idx = (idx,) if isinstance(idx, np.ndarray) else idx
        # accuracy of every model on every resample: correctness @ counts of each item in the draw
        counts = [np.stack([np.bincount(row, minlength=n) for row in i]).astype(float) for i, n in zip(idx, sizes)]
        accs = [[c.astype(float) @ k.T / n for c, k, n in zip(p, counts, sizes)] for p in per]  # seed -> task -> [n_models, B]
        return np.array([np.mean([hv([a[:, b] for a in seed_accs]) for seed_accs in accs]) for b in range(len(counts[0]))])

    return values, stat, sizes


def hypervolume(points: pd.DataFrame, method: str, tasks: list[str], reference, seeds) -> stats.Summary:
    values, stat, sizes = _hv_stat(points, method, tasks, reference, seeds)
    return stats.summarise(values, stat, sizes, what="test items per task")


def difference(points: pd.DataFrame, a: str, b: str, tasks: list[str], reference, seeds=None) -> stats.Summary:
    """hypervolume(a) − hypervolume(b) over the seeds both methods have (default): per-seed
    differences for the t-interval, a paired bootstrap over the test items otherwise."""
    if seeds is None:
        have = [set(points[points.method == m].seed.astype(int)) for m in (a, b)]
        seeds = sorted(have[0] & have[1])
    if not seeds:
        raise ValueError(f"methods {a!r} and {b!r} share no seed")
    va, sa, na = _hv_stat(points, a, tasks, reference, seeds)
    vb, sb, nb = _hv_stat(points, b, tasks, reference, seeds)
    if na != nb:
        raise ValueError(f"methods {a!r} and {b!r} were evaluated on different test items")
    return stats.summarise(va - vb, lambda idx: sa(idx) - sb(idx), na, what="test items per task")


def summary(table: pd.DataFrame, points: pd.DataFrame, tasks: list[str], reference) -> pd.DataFrame:
    """Per method and numeric metric of the per-seed table: n_seeds, mean, sd, ci_lo, ci_hi,
    interval (hypervolume: the bootstrap over test items when seeds are too few for t)."""
    rows = []
    metrics = [
        c for c in table.columns if c not in ("model", "method", "seed", "reference", "metric") and pd.api.types.is_numeric_dtype(table[c])
    ]
    for method, g in table.groupby("method", sort=False):
        g = g.sort_values("seed")
        seeds = list(g.seed.astype(int))
        for metric in metrics:
            if metric == "hypervolume":
                s = hypervolume(points, method, tasks, reference, seeds)
            else:
                s = stats.summarise(g[metric].to_numpy(float))
            rows.append({"method": method, "metric": metric, "seeds": " ".join(map(str, seeds)), **s.row()})
    return pd.DataFrame(rows)

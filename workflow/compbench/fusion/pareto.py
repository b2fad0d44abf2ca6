"""Pareto fronts and hypervolume for two maximised objectives (e.g. accuracy on two tasks)."""

from __future__ import annotations

import numpy as np


def nondominated(points) -> np.ndarray:
    """Boolean mask of the points no other point weakly dominates with one strict improvement (maximisation)."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    keep = np.ones(len(p), dtype=bool)
    for i in range(len(p)):
        dom = np.all(p >= p[i], axis=1) & np.any(p > p[i], axis=1)
        keep[i] = not dom.any()
    return keep


def hypervolume_2d(points, reference) -> float:
    """Area dominated by ``points`` and dominating ``reference`` (both objectives maximised).

    Exact sweep: sort by the first objective descending and add the rectangle each
    point contributes above the best second objective seen so far. Points that do
    not strictly dominate the reference contribute nothing.
    """
    rx, ry = map(float, reference)
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    if not np.isfinite(p).all():
        raise ValueError("hypervolume: points must be finite")
    p = p[(p[:, 0] > rx) & (p[:, 1] > ry)]
    hv, best_y = 0.0, ry
    for x, y in sorted(p.tolist(), key=lambda q: (-q[0], -q[1])):
        if y > best_y:
            hv += (x - rx) * (y - best_y)
            best_y = y
    return hv


def fronts(table, tasks: list[str], reference, metric: str = "accuracy"):
    """Per method: its points (task-1 metric, task-2 metric), the non-dominated ones, and the hypervolume."""
    import pandas as pd

    t = table[table.metric == metric]
    wide = t.pivot_table(index=["method", "setting"], columns="task", values="value").reset_index()
    out = []
    for method, g in wide.groupby("method"):
        pts = g[tasks].to_numpy()
        nd = nondominated(pts)
        out.append(
            {
                "method": method,
                "n_models": len(g),
                "n_front": int(nd.sum()),
                "hypervolume": hypervolume_2d(pts, reference),
                "reference": str(list(reference)),
                "metric": metric,
                **{f"best_{k}": float(g[k].max()) for k in tasks},
            }
        )
    return wide, pd.DataFrame(out)

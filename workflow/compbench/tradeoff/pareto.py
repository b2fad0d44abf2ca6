"""The Pareto front of points that minimise two objectives (stored bytes, perplexity).

A point is on the front when no other point is at least as good in both objectives
and strictly better in one. Equal points do not dominate each other (both stay on
the front); a point with a missing or infinite objective (NaN, inf: a broken
model's perplexity) is never on it and dominates nothing. O(n log n): sort by the first objective, then sweep."""

from __future__ import annotations

import numpy as np


def front(x, y) -> np.ndarray:
    """Boolean mask of the non-dominated points, both objectives minimised
    (negate one to maximise it, e.g. accuracy)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"front: x and y must be 1-D of one length, got shapes {x.shape} and {y.shape}")
    on = np.zeros(len(x), dtype=bool)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    order = ok[np.lexsort((y[ok], x[ok]))]  # by x, then y
    best = np.inf  # lowest y among points with a strictly smaller x
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and x[order[j]] == x[order[i]]:
            j += 1
        group = order[i:j]  # equal x, sorted by y: only its lowest y can be on the front
        low = y[group[0]]
        if low < best:
            on[group[y[group] == low]] = True
            best = low
        i = j
    return on

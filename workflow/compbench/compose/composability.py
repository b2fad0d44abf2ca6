"""The composability metrics of a pair of interventions (Kolbeinsson et al.,
"Composable Interventions for Language Models", ICLR 2025, Sec. 3). Torch-free:
the table and figure jobs import only this.

For a pair A, B and a metric m with error e(m) (1 − m for an accuracy, m itself
where lower is better):

* order-free error  = min(e(A→B), e(B→A))
* order sensitivity = |m(A→B) − m(B→A)|
"""

from __future__ import annotations

import pandas as pd

# metric -> (the category it measures, or None for general utility; higher is better?)
METRICS: dict[str, tuple[str | None, bool]] = {
    "edit_success": ("edit", True),
    "generalisation": ("edit", True),
    "locality": ("edit", True),
    "forget_acc": ("unlearn", False),
    "utility_acc": (None, True),
    "perplexity": (None, False),
    "avg_bits": ("compress", False),
}
BOUNDED = {"edit_success", "generalisation", "locality", "forget_acc", "utility_acc"}
DENSE_BITS = 16.0  # the paper's convention: an uncompressed model is counted at 16 bits per weight


def error(metric: str, value: float) -> float:
    """The error of a metric value: 1 − m for an accuracy-like metric, m where lower is better."""
    if metric not in METRICS:
        raise KeyError(f"unknown composability metric {metric!r}; allowed: {', '.join(METRICS)}")
    higher = METRICS[metric][1]
    if higher:
        if metric not in BOUNDED:
            raise ValueError(f"metric {metric!r}: higher-is-better metrics must be bounded in [0, 1]")
        return 1.0 - value
    return value


def order_free_error(metric: str, ab: float, ba: float) -> float:
    """min(e(A→B), e(B→A)): the error of the better order (the paper's order-free error)."""
    return min(error(metric, ab), error(metric, ba))


def order_sensitivity(ab: float, ba: float) -> float:
    """|m(A→B) − m(B→A)| (the paper's order sensitivity)."""
    return abs(ab - ba)


def relevant_metrics(categories: set[str]) -> list[str]:
    """The metrics a pair is judged on: those of its categories, and the general ones."""
    return [m for m, (cat, _) in METRICS.items() if cat is None or cat in categories]


def composability(runs: pd.DataFrame) -> pd.DataFrame:
    """From tidy rows (first, second, metric, value; one row per order) to one row
    per (pair, metric) with both orders, order-free error and order sensitivity."""
    rows = []
    two = runs[runs["second"] != ""]
    done = set()
    for (a, b), g in two.groupby(["first", "second"], sort=False):
        if frozenset((a, b)) in done:
            continue
        done.add(frozenset((a, b)))
        back = two[(two["first"] == b) & (two["second"] == a)]
        if back.empty:
            raise ValueError(f"pair {a}, {b}: only the order {a}→{b} was run; composability needs both orders")
        cats = {g["first_category"].iloc[0], g["second_category"].iloc[0]}
        ab_vals = dict(zip(g["metric"], g["value"]))
        ba_vals = dict(zip(back["metric"], back["value"]))
        for m in relevant_metrics(cats):
            if m not in ab_vals or m not in ba_vals:
                continue
            rows.append(
                {
                    "first": a,
                    "second": b,
                    "pair": f"{a}+{b}",
                    "categories": "×".join(sorted(cats)),
                    "metric": m,
                    "a_then_b": ab_vals[m],
                    "b_then_a": ba_vals[m],
                    "order_free_error": order_free_error(m, ab_vals[m], ba_vals[m]),
                    "order_sensitivity": order_sensitivity(ab_vals[m], ba_vals[m]),
                }
            )
    return pd.DataFrame(rows)

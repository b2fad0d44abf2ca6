"""Noise of a result: mean, standard deviation and a 95 % interval over seeds or
test items, for the lines' summary tables and the verdicts (torch-free, numpy only).

Which interval (one rule for every line, :func:`summarise`):

* **>= 3 seeds** (``MIN_SEEDS``): the Student-t interval over the seeds' values,
  ``mean ± t(0.975, n−1) · sd / √n``. For a difference of two runs the values are the
  per-seed differences (paired by seed). The test set is the same for every seed, so
  this interval is about the training's randomness (initialisation, batch order,
  augmentation, sampling) on this test set.
* **fewer seeds, per-item results known**: a percentile bootstrap over the test items
  (``N_BOOT`` = 2000 resamples drawn by ``numpy.random.default_rng(BOOT_SEED)``):
  each resample draws the items with replacement, recomputes the statistic of every
  seed on them (a WER as errors / words of the drawn utterances, an accuracy as the
  mean correctness of the drawn items, a hypervolume from the accuracies of every
  model on the drawn items) and averages over the seeds; the 2.5 % and 97.5 %
  quantiles of the resampled values are the interval. Two runs evaluated on the same
  items share each draw (a *paired* bootstrap), so what they have in common cancels.
* **one seed and no per-item results**: no interval.

A statistic that noise alone makes positive (a mean of absolute differences, e.g. the composability
line's order sensitivity) gets no bootstrap interval but a one-sided **sign-flip permutation test**
(:func:`sign_flip_test`): under "the two labels of each pair are exchangeable" every paired
difference's sign is arbitrary; ``N_BOOT`` seeded draws flip each sign independently and
p = (1 + #{null >= observed}) / (1 + draws).

A statistic for the bootstrap is a function of an index array ``idx`` of shape
``[n_boot, n_items]`` (or a tuple of such arrays, one per group of items, e.g. per
task) that returns the ``n_boot`` resampled values (already averaged over seeds);
:func:`seed_mean_ratio` builds the common one. Everything is seeded: the same inputs give the
same interval (the bootstrap's draws are the same integers on every machine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

LEVEL = 0.95  # the intervals' coverage
N_BOOT = 2000  # bootstrap resamples
BOOT_SEED = 0  # numpy.random.default_rng seed of the resampling
MIN_SEEDS = 3  # from this many seeds on: t-interval over seeds


# ---------------------------------------------------------------- Student t
def _t_cdf_upper_half(x: float, df: int) -> float:
    """P(0 <= T <= x) for Student's t with ``df`` degrees of freedom (Simpson's rule on its density)."""
    n = 4000  # even
    t = np.linspace(0.0, x, n + 1)
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    f = np.exp(logc - (df + 1) / 2 * np.log1p(t * t / df))
    w = np.ones(n + 1)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return float((x / n) / 3 * (w * f).sum()) if x > 0 else 0.0


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (0.5 < p < 1) of Student's t with ``df`` >= 1 degrees of freedom
    (bisection on the CDF; 12.706 for p = 0.975, df = 1; 1.960 as df grows)."""
    if not 0.5 < p < 1:
        raise ValueError(f"t_quantile: p={p!r}; allowed: 0.5 < p < 1")
    if int(df) != df or df < 1:
        raise ValueError(f"t_quantile: df={df!r}; allowed: an integer >= 1")
    lo, hi = 0.0, 1.0
    while _t_cdf_upper_half(hi, int(df)) < p - 0.5:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf_upper_half(mid, int(df)) < p - 0.5 else (lo, mid)
    return (lo + hi) / 2


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (at least 2)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError(f"t_interval: {x.size} value(s); allowed: at least 2")
    m, s = float(x.mean()), float(x.std(ddof=1))
    h = t_quantile(1 - (1 - level) / 2, x.size - 1) * s / math.sqrt(x.size)
    return m - h, m + h


# ---------------------------------------------------------------- bootstrap over items
def draws(sizes: int | Sequence[int], n_boot: int = N_BOOT, seed: int = BOOT_SEED):
    """The bootstrap's index arrays: ``[n_boot, n]`` integers in [0, n) (a tuple of them, in
    order, when ``sizes`` is a sequence), drawn by ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    if isinstance(sizes, (int, np.integer)):
        return rng.integers(0, int(sizes), size=(n_boot, int(sizes)))
    return tuple(rng.integers(0, int(n), size=(n_boot, int(n))) for n in sizes)


def percentile_interval(values, level: float = LEVEL) -> tuple[float, float]:
    """The (1 − level)/2 and 1 − (1 − level)/2 quantiles of ``values`` (numpy's linear rule)."""
    lo, hi = np.quantile(np.asarray(values, dtype=float), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def bootstrap(
    stat: Callable, sizes: int | Sequence[int], n_boot: int = N_BOOT, seed: int = BOOT_SEED, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over items: ``stat(idx)`` (``idx`` from
    :func:`draws`) returns the ``n_boot`` resampled values."""
    idx = draws(sizes, n_boot, seed)
    vals = np.asarray(stat(idx), dtype=float).reshape(-1)
    if vals.size != n_boot:
        raise ValueError(f"bootstrap: the statistic returned {vals.size} values for {n_boot} resamples")
    return percentile_interval(vals, level)


def seed_mean_ratio(num, den=None) -> Callable:
    """Statistic: the mean over seeds of sum(num[s, items]) / sum(den[s, items]).

    ``num``: [n_seeds, n_items] (or [n_items]) per-item numerators, e.g. word errors or
    correctness; ``den``: the same shape or [n_items] (e.g. reference words), None = 1 per
    item (then the statistic is a mean, e.g. an accuracy)."""
    num = np.atleast_2d(np.asarray(num, dtype=float))
    den = np.ones_like(num) if den is None else np.broadcast_to(np.atleast_2d(np.asarray(den, dtype=float)), num.shape)

    def stat(idx):
        return (num[:, idx].sum(-1) / den[:, idx].sum(-1)).mean(0)

    return stat


# ---------------------------------------------------------------- sign-flip permutation test
def sign_flip_null(diffs, stat: Callable, n_draws: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """The null distribution of ``stat`` when the sign of every paired difference is arbitrary
    ("swapping the two labels of a pair changes nothing"): ``diffs`` holds paired differences
    d = a − b (any shape, e.g. [n_pairs, n_items]); each of ``n_draws`` draws flips the sign of
    every entry independently with probability 1/2 (``numpy.random.default_rng(seed)``), and
    ``stat(x)`` maps the flipped arrays ``x`` of shape [n_draws, *diffs.shape] to their
    ``n_draws`` values, which are returned."""
    d = np.asarray(diffs, dtype=float)
    if int(n_draws) != n_draws or n_draws < 1:
        raise ValueError(f"sign_flip_null: n_draws={n_draws!r}; allowed: an integer >= 1")
    signs = np.where(np.random.default_rng(seed).random((int(n_draws), *d.shape)) < 0.5, -1.0, 1.0)
    vals = np.asarray(stat(signs * d), dtype=float).reshape(-1)
    if vals.size != n_draws:
        raise ValueError(f"sign_flip_null: the statistic returned {vals.size} values for {n_draws} draws")
    return vals


def permutation_p(observed: float, null) -> float:
    """One-sided p-value of ``observed`` against the drawn ``null``: (1 + #{null >= observed}) /
    (1 + draws); the observed labelling counts as one draw, so p > 0."""
    null = np.asarray(null, dtype=float).reshape(-1)
    return float((1 + np.count_nonzero(null >= observed)) / (1 + null.size))


def null_threshold(null, level: float = LEVEL) -> float:
    """The null's one-sided ``level`` quantile as the test uses it: the k-th largest draw with
    k = floor((1 − level)(draws + 1)), so that an observed value above it has
    :func:`permutation_p` <= 1 − level and one at or below it a larger p. +inf when there are
    too few draws for any p <= 1 − level."""
    null = np.sort(np.asarray(null, dtype=float).reshape(-1))
    k = math.floor(round((1 - level) * (null.size + 1), 9))
    return float(null[null.size - k]) if k >= 1 else math.inf


@dataclass(frozen=True)
class NullTest:
    """A permutation test of one statistic: its observed value, the null's median and its
    one-sided threshold (:func:`null_threshold`), the p-value (:func:`permutation_p`)."""

    observed: float
    median: float
    threshold: float
    p: float
    n_draws: int


def sign_flip_test(diffs, stat: Callable, n_draws: int = N_BOOT, seed: int = BOOT_SEED, level: float = LEVEL) -> NullTest:
    """One-sided sign-flip permutation test of ``stat`` (large = evidence against the null) on the
    paired differences ``diffs`` (:func:`sign_flip_null`); ``stat`` gets arrays of shape
    [draws, *diffs.shape]. The observed value is ``stat`` of the unflipped differences. Every
    value is rounded to 12 decimals first, so that labellings with the same value in exact
    arithmetic tie (a sum in another order may differ in its last bit)."""
    d = np.asarray(diffs, dtype=float)
    observed = float(np.round(np.asarray(stat(d[None]), dtype=float).reshape(-1)[0], 12))
    null = np.round(sign_flip_null(d, stat, n_draws, seed), 12)
    return NullTest(observed, float(np.median(null)), null_threshold(null, level), permutation_p(observed, null), int(n_draws))


# ---------------------------------------------------------------- bits (per-item correctness)
def bits(correct) -> str:
    """Per-item correctness as one CSV cell: 'b' and a 0/1 per item, e.g. 'b0110' (the 'b' keeps a
    CSV reader from taking the digits for a number and dropping the leading zeros)."""
    return "b" + "".join("1" if c else "0" for c in np.asarray(correct, dtype=bool).reshape(-1))


def unbits(text: str) -> np.ndarray:
    s = str(text)
    if not s.startswith("b") or set(s[1:]) - {"0", "1"}:
        raise ValueError(f"per-item correctness {s[:40]!r}: allowed: 'b' and a string of 0 and 1")
    return np.frombuffer(s[1:].encode(), dtype=np.uint8) == ord("1")


# ---------------------------------------------------------------- summary of one quantity
@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation and interval of one quantity over the seeds of a run."""

    mean: float
    sd: float  # over seeds (ddof 1); NaN with one seed
    lo: float | None  # interval (None: none could be computed)
    hi: float | None
    n_seeds: int
    method: str  # how the interval was computed, in words

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.lo is None else (self.lo, self.hi)

    def row(self) -> dict:
        return {"n_seeds": self.n_seeds, "mean": self.mean, "sd": self.sd, "ci_lo": self.lo, "ci_hi": self.hi, "interval": self.method}


def summarise(
    per_seed: Sequence[float],
    item_stat: Callable | None = None,
    sizes: int | Sequence[int] | None = None,
    what: str = "test items",
    level: float = LEVEL,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
    min_seeds: int = MIN_SEEDS,
) -> Summary:
    """Mean and sd of ``per_seed`` (the quantity on every seed) and its interval: t over
    seeds with >= ``min_seeds`` seeds, else the bootstrap of ``item_stat`` over ``sizes``
    items (``what`` names them), else none. For a difference of two runs pass the per-seed
    differences and the difference of their item statistics (a paired bootstrap)."""
    x = np.asarray(per_seed, dtype=float).reshape(-1)
    if x.size == 0:
        raise ValueError("summarise: no seeds")
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    if not np.isfinite(x).all():
        return Summary(mean, sd, None, None, int(x.size), "no interval (a seed has no value)")
    if x.size >= min_seeds:
        lo, hi = t_interval(x, level)
        return Summary(mean, sd, lo, hi, int(x.size), f"t over {x.size} seeds")
    if item_stat is not None and sizes is not None:
        lo, hi = bootstrap(item_stat, sizes, n_boot, seed, level)
        n = sizes if isinstance(sizes, (int, np.integer)) else " + ".join(str(int(s)) for s in sizes)
        seeds = "" if x.size == 1 else f", mean of {x.size} seeds"
        return Summary(mean, sd, lo, hi, int(x.size), f"bootstrap over {n} {what} ({n_boot} resamples{seeds})")
    return Summary(mean, sd, None, None, int(x.size), "one seed, no interval" if x.size == 1 else f"{x.size} seeds, no interval")

"""compbench.stats: the Student-t quantile and interval against known values, the
bootstrap over items against known answers (a constant, a run compared with itself),
against a slow literal implementation, and by its coverage of a known mean."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compbench import stats


@pytest.mark.parametrize(
    "df, q",
    [(1, 12.706204736174705), (2, 4.302652729911275), (4, 2.7764451051977987), (10, 2.2281388519649385), (29, 2.045229642132703)],
)
def test_t_quantile_known_values(df, q):
    assert stats.t_quantile(0.975, df) == pytest.approx(q, abs=1e-6)


def test_t_quantile_tends_to_the_normal_and_refuses_bad_input():
    assert stats.t_quantile(0.975, 5000) == pytest.approx(1.959964, abs=1e-3)
    assert stats.t_quantile(0.95, 3) == pytest.approx(2.353363434801823, abs=1e-6)
    with pytest.raises(ValueError, match="df=0"):
        stats.t_quantile(0.975, 0)
    with pytest.raises(ValueError, match="p=0.2"):
        stats.t_quantile(0.2, 3)


def test_t_interval_known_answer():
    lo, hi = stats.t_interval([1.0, 2.0, 3.0])
    h = 4.302652729911275 * 1.0 / math.sqrt(3)
    assert (lo, hi) == pytest.approx((2 - h, 2 + h), abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        stats.t_interval([1.0])


def test_t_interval_covers_a_normal_mean_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = [lo <= 5.0 <= hi for lo, hi in (stats.t_interval(rng.normal(5.0, 2.0, size=3)) for _ in range(2000))]
    assert 0.93 <= np.mean(hits) <= 0.97  # exact for normal data: 0.95, binomial sd 0.005


def test_bootstrap_of_a_constant_is_the_constant():
    lo, hi = stats.bootstrap(stats.seed_mean_ratio(np.full(50, 0.3)), 50)
    assert lo == pytest.approx(0.3, abs=1e-12) and hi == pytest.approx(0.3, abs=1e-12)


def test_paired_bootstrap_of_a_run_against_itself_is_zero_and_unpaired_is_not():
    e = np.random.default_rng(2).integers(0, 3, size=(2, 80))
    w = np.random.default_rng(3).integers(1, 5, size=80)
    a = stats.seed_mean_ratio(e, w)
    assert stats.bootstrap(lambda idx: a(idx) - a(idx), 80) == (0.0, 0.0)
    lo, hi = stats.bootstrap(lambda idx: a(idx[0]) - a(idx[1]), (80, 80))  # independent draws: no pairing
    assert lo < 0 < hi


def test_bootstrap_equals_a_slow_literal_implementation():
    """WER of two seeds (errors / words per utterance), mean over seeds, 500 resamples:
    the vectorised statistic and quantile equal a loop over resamples with sorted lists."""
    rng = np.random.default_rng(4)
    n, n_boot = 37, 500
    errors = rng.integers(0, 4, size=(2, n))
    words = rng.integers(1, 6, size=n)
    got = stats.bootstrap(stats.seed_mean_ratio(errors, words), n, n_boot=n_boot, seed=7)
    idx = np.random.default_rng(7).integers(0, n, size=(n_boot, n))
    values = []
    for row in idx.tolist():
        per_seed = [sum(int(errors[s][i]) for i in row) / sum(int(words[i]) for i in row) for s in range(2)]
        values.append(sum(per_seed) / 2)
    values.sort()

    def quantile(p):  # numpy's default (linear) rule, written out
        pos = p * (len(values) - 1)
        k = int(math.floor(pos))
        return values[k] + (pos - k) * (values[min(k + 1, len(values) - 1)] - values[k])

    assert got == pytest.approx((quantile(0.025), quantile(0.975)), abs=1e-12)


def test_bootstrap_interval_covers_a_normal_mean():
    rng = np.random.default_rng(5)
    hits = []
    for _ in range(300):
        x = rng.normal(1.0, 1.0, size=40)
        lo, hi = stats.bootstrap(stats.seed_mean_ratio(x), 40, n_boot=1000, seed=int(rng.integers(1 << 30)))
        hits.append(lo <= 1.0 <= hi)
    assert 0.88 <= np.mean(hits) <= 0.99  # percentile bootstrap of a mean, n = 40: ~0.93-0.94


def test_bootstrap_refuses_a_statistic_of_the_wrong_length():
    with pytest.raises(ValueError, match="returned 1 values for 2000"):
        stats.bootstrap(lambda idx: 0.0, 10)


def test_summarise_picks_t_over_seeds_bootstrap_over_items_or_nothing():
    three = stats.summarise([0.1, 0.2, 0.3], stats.seed_mean_ratio(np.zeros(5)), 5)
    assert three.method == "t over 3 seeds" and three.interval == pytest.approx(stats.t_interval([0.1, 0.2, 0.3]))
    assert three.mean == pytest.approx(0.2) and three.sd == pytest.approx(0.1)
    correct = np.array([[1, 0, 1, 1], [1, 1, 0, 1]])
    two = stats.summarise(correct.mean(1), stats.seed_mean_ratio(correct), 4, what="test images")
    assert two.method == "bootstrap over 4 test images (2000 resamples, mean of 2 seeds)"
    assert two.lo <= two.mean <= two.hi and two.n_seeds == 2
    one = stats.summarise([0.5])
    assert one.interval is None and one.method == "one seed, no interval" and math.isnan(one.sd)
    row = stats.summarise([0.5], stats.seed_mean_ratio([1, 0]), 2).row()
    assert set(row) == {"n_seeds", "mean", "sd", "ci_lo", "ci_hi", "interval"} and row["ci_lo"] == 0.0 and row["ci_hi"] == 1.0
    assert stats.summarise([0.5, float("nan"), 0.1]).interval is None


def _mean_abs(x):  # |mean over items|, averaged over pairs: x [..., n_pairs, n_items]
    return np.abs(x.mean(-1)).mean(-1)


@pytest.mark.parametrize("n", [5, 8])
def test_sign_flip_p_equals_the_exact_enumeration_of_all_flips(n):
    """One pair, n <= 8 items: the exact p-value over all 2^n sign flips (a loop in plain
    Python) is within Monte-Carlo error of the test's p from 2000 random flips."""
    import itertools

    rng = np.random.default_rng(n)
    for d in (rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=n), np.r_[np.ones(n - 2), -0.5, 0.0], np.ones(n)):
        observed = abs(sum(d)) / n
        flips = [abs(sum(s * x for s, x in zip(signs, d))) / n for signs in itertools.product((1, -1), repeat=n)]
        exact = sum(f >= observed - 1e-12 for f in flips) / len(flips)
        got = stats.sign_flip_test(d[None], _mean_abs, n_draws=2000, seed=3)
        assert got.observed == pytest.approx(observed, abs=1e-12)
        assert abs(got.p - exact) <= 4 * math.sqrt(exact * (1 - exact) / 2000) + 2 / 2001, (d, got.p, exact)


def test_sign_flip_threshold_decides_exactly_as_the_p_value():
    """observed > null_threshold iff permutation_p <= 0.05, on discrete nulls with many ties;
    the threshold is the k-th largest draw, k = floor(0.05 (draws + 1)), from a sorted list."""
    rng = np.random.default_rng(0)
    for draws in (19, 20, 100, 2000):
        null = rng.integers(0, 12, size=draws) / 4
        ranked = sorted(null.tolist(), reverse=True)
        k = int(0.05 * (draws + 1) + 1e-9)
        assert stats.null_threshold(null) == ranked[k - 1]
        for observed in np.arange(0, 13) / 4:
            p = (1 + sum(v >= observed for v in null.tolist())) / (1 + draws)
            assert stats.permutation_p(observed, null) == pytest.approx(p)
            assert (observed > stats.null_threshold(null)) == (p <= 0.05)
    assert stats.null_threshold(np.zeros(18)) == math.inf  # 18 draws: p >= 1/19 > 0.05 always


def test_sign_flip_test_without_differences_and_with_one_sided_ones():
    same = stats.sign_flip_test(np.zeros((5, 16)), _mean_abs)
    assert (same.observed, same.median, same.threshold, same.p) == (0.0, 0.0, 0.0, 1.0)
    one_sided = stats.sign_flip_test(np.ones((5, 16)), _mean_abs)  # one order wins on every fact
    assert one_sided.observed == 1.0 and one_sided.p == pytest.approx(1 / 2001) and one_sided.threshold < 0.5
    again = stats.sign_flip_test(np.ones((5, 16)), _mean_abs)
    assert again == one_sided  # seeded
    with pytest.raises(ValueError, match="returned 1 values for 2000"):
        stats.sign_flip_null(np.ones(4), lambda x: 0.0)
    with pytest.raises(ValueError, match="n_draws=0"):
        stats.sign_flip_null(np.ones(4), _mean_abs, n_draws=0)


def test_bits_round_trip_through_a_csv_and_refuse_other_characters(tmp_path):
    import pandas as pd

    c = np.array([False, False, True, True, False])
    assert stats.bits(c) == "b00110" and (stats.unbits("b00110") == c).all()
    pd.DataFrame({"correct": [stats.bits(c)]}).to_csv(tmp_path / "t.csv", index=False)
    assert (stats.unbits(pd.read_csv(tmp_path / "t.csv").correct.iloc[0]) == c).all()  # leading zeros kept
    for bad in ("b10a1", "0110", 110):
        with pytest.raises(ValueError, match="0 and 1"):
            stats.unbits(bad)

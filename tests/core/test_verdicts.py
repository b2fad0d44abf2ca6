"""The report's front page and tables: the verdict function, every line's claims on
hand-made tables, the generated page and every caption as clean reStructuredText
(docutils prints a "System Message" box into the report for each warning), and the
sortable HTML tables."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pandas as pd
import pytest
import yaml

from compbench import htmltable, lines, verdicts
from compbench.verdicts import FAILS, HOLDS, NOISE, UNTESTABLE, verdict
from conftest import ROOT

REPORT = ROOT / "workflow" / "report"


# ---------------------------------------------------------------- the verdict
@pytest.mark.parametrize(
    "diff, interval, strict, word",
    [
        (1.0, None, True, HOLDS),
        (-1.0, None, True, FAILS),
        (0.0, None, True, FAILS),  # "beats": a tie is not a win
        (0.0, None, False, HOLDS),  # "on par or better": a tie holds
        (None, None, True, UNTESTABLE),
        (float("nan"), None, True, UNTESTABLE),
        (0.5, (0.1, 0.9), True, HOLDS),
        (0.2, (-0.1, 0.5), True, NOISE),
        (-0.3, (-0.5, -0.1), True, FAILS),
        (0.2, (0.0, 0.4), False, HOLDS),
        (0.2, (0.0, 0.4), True, NOISE),
        (None, (0.1, 0.2), True, UNTESTABLE),
    ],
)
def test_verdict_known_answers(diff, interval, strict, word):
    assert verdict(diff, interval, strict) == word


def test_within_noise_only_with_an_interval():
    assert {verdict(d) for d in (-2.0, -1e-9, 0.0, 1e-9, 3.0)} == {HOLDS, FAILS}
    with pytest.raises(ValueError, match="lo <= hi"):
        verdict(0.1, (0.5, -0.5))


def test_outcome_noise_text():
    assert verdicts.Outcome("x", 0.3).noise == "one run, no interval"
    assert verdicts.Outcome("x", 0.3, (0.1, 0.5)).noise == "interval [0.1, 0.5]"
    o = verdicts.Outcome("x", -0.02, (-0.05, 0.01), how="t over 3 seeds")
    assert o.noise == "interval [-0.05, 0.01], t over 3 seeds" and o.verdict == NOISE
    row = verdicts.evaluate([verdicts.Claim("a/b", "speech", "p", "s", "a", "src", "l", (), lambda read: o)], None)[0]
    assert (row["interval_lo"], row["interval_hi"], row["interval_method"], row["verdict"]) == (-0.05, 0.01, "t over 3 seeds", NOISE)
    assert verdicts.untestable("why").verdict == UNTESTABLE


# ---------------------------------------------------------------- claims on hand-made tables
def _config(name: str) -> dict:
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    validate(cfg, str(ROOT / "config" / "schema.yaml"), set_default=True)
    return cfg


def _claim(cfg, cid):
    return {c.id: c for c in verdicts.collect(cfg)}[cid]


def _reader(tables: dict):
    return lambda path: tables[path]


def _windows(claim, dataset: str, nll: dict, tokens: int = 7) -> dict:
    """The window tables of a claim's inputs (rule perplexity's windows-*.csv): every variant's
    per-window NLL sums ``nll[variant]``, all in the first such table, the others empty."""
    from compbench.perplexity import WINDOW_COLUMNS

    rows = [("tiny", v, dataset, i, float(x), tokens) for v, xs in nll.items() for i, x in enumerate(xs)]
    paths = [p for p in claim.inputs if "/windows-" in p]
    assert paths, claim.id
    return {p: pd.DataFrame(rows if i == 0 else [], columns=WINDOW_COLUMNS) for i, p in enumerate(paths)}


def _ppl(nll, tokens: int = 7) -> float:
    return math.exp(math.fsum(nll) / (tokens * len(nll)))


def _noisy(n: int, seed: int, level: float, spread: float = 1.0):
    import numpy as np

    return list(level * 7 + spread * np.random.default_rng(seed).standard_normal(n))


def test_perplexity_interval_known_answers():
    """Paired bootstrap over windows: a variant worse on every window -> above 0; a variant
    against itself -> exactly [0, 0] (within noise for "beats", holds for "no worse"); equal
    to a slow literal bootstrap; no interval without shared windows."""
    import numpy as np

    from compbench import stats

    base = _noisy(60, 0, 4.0)
    worse = [x + 7 * 0.3 for x in _noisy(60, 1, 4.0, 0.2)]  # log-perplexity 0.3 higher on average, noise small
    tables = {"w.csv": pd.DataFrame([("m", v, "tiny", i, x, 7) for v, xs in (("a", worse), ("b", base)) for i, x in enumerate(xs)],
                                    columns=["model", "variant", "dataset", "window", "nll", "tokens"])}  # fmt: skip
    read = _reader(tables)
    s = verdicts.perplexity_interval(read, ["w.csv"], "tiny", "a", "b")
    assert s.mean == pytest.approx(_ppl(worse) - _ppl(base)) and s.mean > 0
    assert 0 < s.lo < s.mean < s.hi and s.method == "bootstrap over 60 windows (2000 resamples)"
    assert verdicts.with_summary("x", s.mean, s).verdict == HOLDS
    # the same numbers by hand: every resample's perplexities from its drawn windows
    idx = stats.draws(60)
    lit = [math.exp(sum(worse[j] for j in row) / (7 * 60)) - math.exp(sum(base[j] for j in row) / (7 * 60)) for row in idx]
    lo, hi = np.quantile(lit, [0.025, 0.975])
    assert (s.lo, s.hi) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    same = verdicts.perplexity_interval(read, ["w.csv"], "tiny", "b", "b")
    assert (same.mean, same.lo, same.hi) == (0.0, 0.0, 0.0)
    assert verdicts.with_summary("x", 0.0, same).verdict == NOISE
    assert verdicts.with_summary("x", 0.0, same, strict=False).verdict == HOLDS
    reverse = verdicts.perplexity_interval(read, ["w.csv"], "tiny", "b", "a")
    assert (reverse.lo, reverse.hi) == (pytest.approx(-s.hi), pytest.approx(-s.lo))
    assert verdicts.with_summary("x", reverse.mean, reverse).verdict == FAILS
    # no windows, another data set, or other windows (another tokenizer): no interval
    assert verdicts.perplexity_interval(read, ["w.csv"], "tiny", "a", "c") is None
    assert verdicts.perplexity_interval(read, ["w.csv"], "natural", "a", "b") is None
    assert verdicts.perplexity_interval(read, [], "tiny", "a", "b") is None
    t = tables["w.csv"]
    cut = _reader({"w.csv": t[(t.variant == "b") | (t.window < 50)]})
    assert verdicts.perplexity_interval(cut, ["w.csv"], "tiny", "a", "b") is None
    o = verdicts.with_summary("x", 1.0, None)
    assert o.interval is None and o.noise == "one run, no interval"


def test_pruning_claim_compares_alpha_with_uniform_at_70_percent():
    cfg = _config("config")
    c = _claim(cfg, "pruning/alpha-beats-uniform/tiny/wanda")
    rows = [
        ("wanda", "uniform", 0.7, 125.0),
        ("wanda", "alpha", 0.7, 146.8),
        ("wanda", "uniform", 0.8, 200.0),
        ("wanda", "alpha", 0.8, 150.0),
    ]
    t = pd.DataFrame(rows, columns=["method", "allocation", "target", "perplexity"]).assign(dataset="tiny")
    t["variant"] = [f"prune-{m}-{a}-{s}" for m, a, s, _ in rows]
    o = c.evaluate(_reader({c.inputs[0]: t, **_windows(c, "tiny", {})}))  # no windows: no interval
    assert o.diff == pytest.approx(125.0 - 146.8) and o.verdict == FAILS and o.noise == "one run, no interval"
    assert "uniform 125.0 → alpha 146.8" in o.numbers
    assert c.anchor == "uniform 85.77 → alpha 23.86"
    # windows: alpha clearly worse on every window -> the interval lies below 0
    uniform = _noisy(40, 0, math.log(125.0))
    alpha = [x + 7 * math.log(146.8 / 125.0) for x in uniform]
    o = c.evaluate(_reader({c.inputs[0]: t, **_windows(c, "tiny", {"prune-wanda-uniform-0.7": uniform, "prune-wanda-alpha-0.7": alpha})}))
    assert o.verdict == FAILS and o.interval[1] < 0 and o.how == "bootstrap over 40 windows (2000 resamples)"
    # the same perplexity on every window -> within noise, whatever the table's rounding says
    o = c.evaluate(_reader({c.inputs[0]: t, **_windows(c, "tiny", {"prune-wanda-uniform-0.7": uniform, "prune-wanda-alpha-0.7": uniform})}))
    assert o.verdict == NOISE and o.interval == (0.0, 0.0)
    o = c.evaluate(_reader({c.inputs[0]: t[t.allocation != "alpha"]}))
    assert o.verdict == UNTESTABLE and "alpha/uniform" in o.why


def test_spectra_claim_margin_to_the_well_trained_range():
    cfg = _config("smoke")
    c = _claim(cfg, "spectra/heavy-tailed/tiny")
    t = pd.DataFrame({"block": [0, 1], "alpha_peak": [2.5, 5.0]})
    o = c.evaluate(_reader({c.inputs[0]: t}))
    assert o.diff == pytest.approx(0.5) and o.verdict == HOLDS
    o = c.evaluate(_reader({c.inputs[0]: t.assign(alpha_peak=[1.7, 3.0])}))
    assert o.diff == pytest.approx(-0.3) and o.verdict == FAILS


def test_memtrain_claims_on_bytes_and_perplexity():
    cfg = _config("smoke")
    mib = 2**20
    t = pd.DataFrame(
        [
            ("finetune", "qgalore", "bytes_total", 34 * mib),
            ("finetune", "lora", "bytes_total", 37 * mib),
            ("finetune", "galore", "bytes_total", 44 * mib),
            ("finetune", "qgalore", "test_perplexity", 103.3),
            ("finetune", "galore", "test_perplexity", 103.4),
            ("pretrain", "qgalore", "bytes_total", 99 * mib),
        ],
        columns=["regime", "variant", "metric", "value"],
    )
    mem = _claim(cfg, "memtrain/qgalore-less-memory")
    o = mem.evaluate(_reader({mem.inputs[0]: t}))
    assert o.diff == pytest.approx(3 * mib) and o.verdict == HOLDS and "-8% vs the smallest" in o.numbers
    ppl = _claim(cfg, "memtrain/qgalore-matches-galore")
    assert ppl.evaluate(_reader({ppl.inputs[0]: t})).diff == pytest.approx(0.1)
    assert ppl.evaluate(_reader({ppl.inputs[0]: t[t.variant != "galore"]})).verdict == UNTESTABLE
    assert ppl.inputs == (ppl.inputs[0],)  # smoke fine-tunes no galore: no windows, no interval
    # the embedded default fine-tunes one model with both: a paired bootstrap over its test windows
    ppl = _claim(_config("config"), "memtrain/qgalore-matches-galore")
    assert ppl.inputs[1:] == ("results/memtrain/finetune/tiny/galore/windows.csv", "results/memtrain/finetune/tiny/qgalore/windows.csv")
    w = _noisy(50, 5, math.log(103.4))
    tables = {ppl.inputs[0]: t, ppl.inputs[1]: pd.DataFrame([("tiny", "galore", "test", i, x, 7) for i, x in enumerate(w)],
              columns=["model", "variant", "dataset", "window", "nll", "tokens"])}  # fmt: skip
    tables[ppl.inputs[2]] = tables[ppl.inputs[1]].assign(variant="qgalore", nll=[x + (0.5 if i % 2 else -0.5) for i, x in enumerate(w)])
    o = ppl.evaluate(_reader(tables))
    assert o.diff == pytest.approx(0.1) and o.verdict == NOISE and o.how == "bootstrap over 50 windows (2000 resamples)"
    tables[ppl.inputs[2]] = tables[ppl.inputs[1]].assign(variant="qgalore")  # the same windows: no worse, exactly
    assert ppl.evaluate(_reader(tables)).interval == (0.0, 0.0) and ppl.evaluate(_reader(tables)).verdict == HOLDS


def test_calibration_claims():
    cfg = _config("config")
    rows = []
    for source, fmt, cat, acc in [
        ("tiny", "raw", "pretraining", 0.6),
        ("arith", "concat", "arithmetic", 0.8),
        ("arith", "zero", "arithmetic", 0.9),
    ]:
        for task in ("a", "b"):
            rows.append((f"calib-{source}-{fmt}", source, fmt, cat, "wanda", task, "acc", acc))
    rows.append(("dense", "(dense)", None, "dense", "dense", "a", "acc", 0.5))
    t = pd.DataFrame(rows, columns=["variant", "source", "format", "category", "method", "dataset", "metric", "value"])
    no_items = lambda c: {p: pd.DataFrame(columns=["model", "variant", "dataset", "metric", "n", "correct"]) for p in c.inputs[1:]}  # noqa: E731
    par = _claim(cfg, "calibration/arithmetic-on-par/tiny")
    o = par.evaluate(_reader({par.inputs[0]: t, **no_items(par)}))
    assert o.diff == pytest.approx(85.0 - 60.0) and o.verdict == HOLDS and o.interval is None
    icl = _claim(cfg, "calibration/icl-helps/tiny")
    o = icl.evaluate(_reader({icl.inputs[0]: t, **no_items(icl)}))
    assert o.diff == pytest.approx(80.0 - 90.0) and o.verdict == FAILS
    smoke = _claim(_config("smoke"), "calibration/icl-helps/tiny")
    assert smoke.evaluate(_reader({smoke.inputs[0]: t[t.format != "zero"], **no_items(smoke)})).verdict == UNTESTABLE


def test_calibration_claims_paired_bootstrap_over_items():
    """The items behind the accuracies: a clear gap (+20 points on 100 + 100 items) -> the
    interval excludes 0; the same items -> [0, 0]; items that differ both ways -> within noise."""
    import numpy as np

    from compbench import stats

    cfg = _config("config")
    par = _claim(cfg, "calibration/arithmetic-on-par/tiny")
    item_paths = [p for p in par.inputs if "/lm_eval_items-" in p]
    assert item_paths and len(item_paths) == len(par.inputs) - 1
    rng = np.random.default_rng(0)
    base = {task: rng.random(100) < 0.6 for task in ("cb_a", "cb_b")}
    cells = {
        "calib-tiny-raw_s0-wanda-0.5": ("tiny", "raw", "pretraining"),
        "calib-arith-concat_s0-wanda-0.5": ("arith", "concat", "arithmetic"),
    }

    def run(arith):
        rows, items = [], []
        for v, (source, fmt, cat) in cells.items():
            for task, ok in (arith if cat == "arithmetic" else base).items():
                rows.append((v, source, fmt, cat, "wanda", task, "acc", ok.mean()))
                items.append(("tiny", v, task, "acc", ok.size, stats.bits(ok)))
        t = pd.DataFrame(rows, columns=["variant", "source", "format", "category", "method", "dataset", "metric", "value"])
        it = pd.DataFrame(items, columns=["model", "variant", "dataset", "metric", "n", "correct"])
        empty = it.iloc[:0]
        return _reader({par.inputs[0]: t, **{p: it if i == 0 else empty for i, p in enumerate(item_paths)}})

    better = {task: ok | (rng.random(100) < 0.5) for task, ok in base.items()}  # only ever more right
    o = par.evaluate(run(better))
    gain = 100 * np.mean([better[k].mean() - base[k].mean() for k in base])
    assert o.diff == pytest.approx(gain) and gain > 15 and o.interval[0] > 0 and o.verdict == HOLDS
    assert o.how == "bootstrap over 100 + 100 test items per task (2000 resamples)"
    o = par.evaluate(run(base))
    assert o.diff == 0 and o.interval == (0.0, 0.0) and o.verdict == HOLDS  # "on par or better": identical holds
    one = {k: v.copy() for k, v in base.items()}
    one["cb_a"][np.flatnonzero(~one["cb_a"])[:1]] = True  # one item more right: paired, no resample is below 0
    o = par.evaluate(run(one))
    assert o.diff == pytest.approx(0.5) and o.interval[0] == 0 < o.interval[1] and o.verdict == HOLDS
    one["cb_a"][np.flatnonzero(~one["cb_a"])[:1]] = True  # two more right in one task, one more wrong in the other
    one["cb_b"][np.flatnonzero(one["cb_b"])[:1]] = False
    o = par.evaluate(run(one))
    assert o.diff == pytest.approx(0.5) and o.interval[0] < 0 < o.interval[1] and o.verdict == NOISE
    # without items (or with one task's items missing) no interval
    lacking = run(better)
    cut = lambda d: d[~((d.dataset == "cb_b") & d.variant.str.startswith("calib-tiny"))]  # noqa: E731
    assert par.evaluate(lambda p: cut(lacking(p)) if "/lm_eval_items-" in p else lacking(p)).interval is None


def test_lowrank_claims():
    cfg = _config("config")
    t = pd.DataFrame(
        [
            ("lowrank-uniform-0.6", 110.0),
            ("lowrank-welore-0.6", 108.0),
            ("lowrank-welore-0.5-ft-full", 105.0),
            ("lowrank-welore-0.5-ft-lrc", 105.0),
        ],
        columns=["variant", "value"],
    ).assign(metric="perplexity", dataset="tiny")
    w = _noisy(30, 3, math.log(105.0))
    nll = {
        "lowrank-uniform-0.6": [x + 7 * 0.2 for x in w],
        "lowrank-welore-0.6": [x + 7 * 0.2 + (3.0 if i % 2 else -3.0) for i, x in enumerate(w)],  # as uniform on average, noisy
        "lowrank-welore-0.5-ft-full": w,
        "lowrank-welore-0.5-ft-lrc": w,
    }
    for cid, diff, word, no_interval in [
        ("lowrank/welore-beats-uniform/tiny", 2.0, NOISE, HOLDS),
        ("lowrank/lrc-matches-full/tiny", 0.0, HOLDS, HOLDS),
    ]:
        c = _claim(cfg, cid)
        o = c.evaluate(_reader({c.inputs[0]: t, **_windows(c, "tiny", {})}))
        assert o.diff == pytest.approx(diff) and o.verdict == no_interval and o.interval is None, cid
        o = c.evaluate(_reader({c.inputs[0]: t, **_windows(c, "tiny", nll)}))
        assert o.diff == pytest.approx(diff) and o.verdict == word and "windows" in o.how, cid


# ---------------------------------------------------------------- speech, vision, fusion: intervals
def _speech(errors: dict, words: list[int]):
    """Hand-made speech results: errors[(run, seed)] = word errors of every test utterance."""
    items = pd.DataFrame(
        [
            {
                "run": r,
                "seed": s,
                "split": "test",
                "id": f"u{i:02d}",
                "word_errors": e,
                "ref_words": w,
                "char_errors": e,
                "ref_chars": 4 * w,
            }
            for (r, s), es in errors.items()
            for i, (e, w) in enumerate(zip(es, words))
        ]
    )
    rows = [(r, s, "test_wer", sum(es) / sum(words)) for (r, s), es in errors.items()]
    rows += [(r, s, "params_effective", 100_000 if r == "dense" else 50_000) for (r, s) in errors]
    table = pd.DataFrame(rows, columns=["run", "seed", "metric", "value"])
    return _reader({"results/tables/speech.csv": table, "results/speech/items.csv": items})


def test_speech_claims_one_seed_paired_bootstrap_over_utterances():
    cfg = _config("smoke")
    words = [3] * 40
    dense = [1] * 12 + [0] * 28  # 12 / 120 = 10 %
    read = _speech(
        {
            ("dense", 0): dense,
            ("lrsms-r50-svd", 0): [0] * 40,  # never worse on any utterance: holds
            ("ddp-utterance-0.5", 0): [2] * 30 + [0] * 10,  # 50 %: does not hold
            ("msrs-sparse", 0): dense[:-1] + [1],  # one more error of 120: within noise
        },
        words,
    )
    o = _claim(cfg, "speech/lrsms-parity").evaluate(read)
    assert o.diff == pytest.approx(0.1) and o.verdict == HOLDS and 0 < o.interval[0] < 0.1 < o.interval[1]
    assert o.how == "bootstrap over 40 test utterances (2000 resamples)" and "2.00x fewer" in o.numbers and "1 seed" in o.numbers
    o = _claim(cfg, "speech/ddp-parity").evaluate(read)
    assert o.diff == pytest.approx(0.1 - 0.5) and o.verdict == FAILS and o.interval[1] < 0
    o = _claim(cfg, "speech/msrs-parity").evaluate(read)
    assert o.diff == pytest.approx(-1 / 120) and o.verdict == NOISE and o.interval[0] < 0 <= o.interval[1]
    assert "interval [" in o.noise and "bootstrap over 40 test utterances" in o.noise


def test_speech_claims_three_seeds_t_interval_and_svd_vs_random():
    from compbench import stats

    cfg = _config("config")
    words = [2] * 50  # 100 words per seed
    errors = {}
    for seed, (d, svd, rnd) in enumerate([(10, 5, 6), (12, 6, 9), (11, 4, 7)]):  # errors of dense, r25-svd, r25-random
        errors[("dense", seed)] = [1] * d + [0] * (50 - d)
        errors[("lrsms-r25-svd", seed)] = [1] * svd + [0] * (50 - svd)
        errors[("lrsms-r25-random", seed)] = [0] * (50 - rnd) + [1] * rnd
    read = _speech(errors, words)
    o = _claim(cfg, "speech/lrsms-parity").evaluate(read)
    assert o.diff == pytest.approx(0.06) and o.how == "t over 3 seeds" and "3 seeds" in o.numbers
    assert o.interval == pytest.approx(stats.t_interval([0.05, 0.06, 0.07])) and o.verdict == HOLDS
    o = _claim(cfg, "speech/lrsms-svd-beats-random/r25").evaluate(read)
    assert o.diff == pytest.approx((1 + 3 + 3) / 300) and o.interval == pytest.approx(stats.t_interval([0.01, 0.03, 0.03]))
    # SVD is better on every seed, but three seeds this spread apart leave 0 inside the t-interval
    assert o.verdict == NOISE and o.interval[0] < 0 and "SVD init 5.0% vs random init 7.3%" in o.numbers
    assert _claim(cfg, "speech/ddp-parity").evaluate(read).verdict == UNTESTABLE


def _bits(n_ok: int, n: int) -> str:
    return "b" + "1" * n_ok + "0" * (n - n_ok)


def test_vision_claim_paired_bootstrap_over_images():
    cfg = _config("smoke")
    n = 200
    items = pd.DataFrame(
        [("pass", 0.5, 0, _bits(120, n)), ("l1_uniform", 0.5, 0, _bits(100, n)), ("pass_noprompt", 0.5, 0, _bits(101, n))],
        columns=["method", "target", "seed", "correct"],
    )
    table = items.assign(metric="accuracy", value=[0.6, 0.5, 0.505]).drop(columns="correct")
    read = _reader({"results/tables/pass.csv": table, "results/vision/pass/items.csv": items})
    o = _claim(cfg, "vision/pass-beats-l1/0.5").evaluate(read)
    # PASS is right on every image L1 is right on, and on 20 more: every resample favours PASS
    assert o.diff == pytest.approx(0.1) and o.verdict == HOLDS and o.how.startswith("bootstrap over 200 test images")
    swap = items.assign(method=["l1_uniform", "pass", "x"])
    o = _claim(cfg, "vision/pass-beats-l1/0.5").evaluate(_reader({"results/tables/pass.csv": table, "results/vision/pass/items.csv": swap}))
    assert o.diff == pytest.approx(-0.1) and o.verdict == FAILS
    near = items.assign(correct=[_bits(101, n), _bits(100, n), _bits(1, n)])
    o = _claim(cfg, "vision/pass-beats-l1/0.5").evaluate(_reader({"results/tables/pass.csv": table, "results/vision/pass/items.csv": near}))
    assert o.diff == pytest.approx(0.005) and o.verdict == NOISE


def test_fusion_claim_hypervolume_with_a_paired_bootstrap():
    from compbench.fusion import pareto

    cfg = _config("smoke")
    n = 100
    models = {  # method, setting -> (correct on animal, on outdoor), out of 100
        ("moe_fusion", "a"): (90, 80),
        ("moe_fusion", "b"): (80, 90),
        ("task_arithmetic", "a"): (70, 70),
        ("task_arithmetic", "b"): (60, 75),
    }
    rows = [
        {"method": m, "setting": st, "task": task, "metric": "accuracy", "value": k / n, "correct": _bits(k, n), "seed": 0}
        for (m, st), ks in models.items()
        for task, k in zip(["animal", "outdoor"], ks)
    ]
    points = pd.DataFrame(rows)
    hv = lambda m: pareto.hypervolume_2d([[k / n for k in ks] for (mm, _), ks in models.items() if mm == m], [0.5, 0.5])  # noqa: E731
    table = pd.DataFrame({"method": ["moe_fusion", "task_arithmetic"], "hypervolume": [hv("moe_fusion"), hv("task_arithmetic")], "seed": 0})
    read = _reader({"results/tables/fusion-tiny.csv": table, "results/tables/fusion-points-tiny.csv": points})
    o = _claim(cfg, "fusion/moe-beats-task-arithmetic/tiny").evaluate(read)
    assert o.diff == pytest.approx(hv("moe_fusion") - hv("task_arithmetic")) and o.diff > 0.05
    assert o.verdict == HOLDS and o.how == "bootstrap over 100 + 100 test items per task (2000 resamples)"
    assert o.interval[0] < o.diff < o.interval[1]


def test_compose_claims():
    cfg = _config("smoke")
    runs = pd.DataFrame(
        [
            ("ft", None, "edit", None, 0.9),
            ("ft", "wanda", "edit", "compress", 0.7),
            ("wanda", "ft", "compress", "edit", 0.6),
            ("ga", None, "unlearn", None, 0.4),
        ],
        columns=["first", "second", "first_category", "second_category", "value"],
    ).assign(metric="edit_success")
    c = _claim(cfg, "compose/compression-hurts-editing/tiny")
    empty = pd.DataFrame(columns=["model", "run", "order", "metric", "item", "value"])
    no_items = {p: empty for p in c.inputs[1:]}
    o = c.evaluate(_reader({c.inputs[0]: runs, **no_items}))
    assert o.diff == pytest.approx(0.9 - 0.65) and o.verdict == HOLDS and o.interval is None
    # each fact's edit success (20 facts): the paired bootstrap over facts
    runs["order"] = ["ft", "ft→wanda", "wanda→ft", "ga"]
    per_fact = {"ft": [1.0] * 18 + [0.0] * 2, "ft→wanda": [1.0] * 14 + [0.0] * 6, "wanda→ft": [1.0] * 12 + [0.0] * 8, "ga": [0.4] * 20}
    items = pd.DataFrame(
        [("tiny", o, o, "edit_success", i, v) for o, vs in per_fact.items() for i, v in enumerate(vs)], columns=empty.columns
    )
    o = c.evaluate(_reader({c.inputs[0]: runs, **no_items, c.inputs[1]: items}))
    assert o.diff == pytest.approx(0.9 - 0.65) and o.how == "bootstrap over 20 edited facts (2000 resamples)"
    assert 0 < o.interval[0] < o.diff < o.interval[1] and o.verdict == HOLDS
    same = items.assign(value=lambda d: d["order"].map({"ft": 0.5, "ft→wanda": 0.5, "wanda→ft": 0.5, "ga": 0.4}))
    o = c.evaluate(_reader({c.inputs[0]: runs, **no_items, c.inputs[1]: same}))
    assert o.interval == (0.0, 0.0) and o.verdict == NOISE  # the table's numbers say otherwise; the facts say no change


def _order_tables(claim, facts: dict, pairs=(("ft", "wanda"), ("ft", "ga")), categories=("compress×edit", "edit×unlearn")):
    """A claim's composability table (from ``facts``: order -> each fact's edit success) and
    its items tables (all rows in the first)."""
    cols = ["model", "run", "order", "metric", "item", "value"]
    rows = [("tiny", o, o, "edit_success", i, v) for o, vs in facts.items() for i, v in enumerate(vs)]
    m = {o: sum(vs) / len(vs) for o, vs in facts.items()}
    table = pd.DataFrame(
        [(a, b, c, "edit_success", abs(m[f"{a}→{b}"] - m[f"{b}→{a}"])) for (a, b), c in zip(pairs, categories)],
        columns=["first", "second", "categories", "metric", "order_sensitivity"],
    )
    items = {p: pd.DataFrame(rows if i == 0 else [], columns=cols) for i, p in enumerate(claim.inputs[1:])}
    return {claim.inputs[0]: table, **items}


def test_compose_order_claim_is_a_sign_flip_test_over_facts():
    """The order sensitivity (a mean of |differences|, > 0 whenever anything differs) is tested
    against sign flips of each fact's difference between the two orders."""
    cfg = _config("smoke")
    c = _claim(cfg, "compose/order-matters/tiny")
    assert c.inputs[0].endswith("composability-tiny.csv") and all("/items/" in p for p in c.inputs[1:]) and len(c.inputs) > 2
    unlearn = {"ft→ga": [0.0] * 16, "ga→ft": [1.0] * 16}  # not compress × edit: left out
    # both orders alike on every fact -> T = 0, within noise
    same = c.evaluate(_reader(_order_tables(c, {"ft→wanda": [1.0, 0.5] * 8, "wanda→ft": [1.0, 0.5] * 8, **unlearn})))
    assert same.diff == 0.0 and same.interval == (0.0, 0.0) and same.verdict == NOISE
    # one order succeeds on every fact, the other fails -> T = 1, p = 1 / 2001, holds
    apart = c.evaluate(_reader(_order_tables(c, {"ft→wanda": [1.0] * 16, "wanda→ft": [0.0] * 16, **unlearn})))
    assert apart.verdict == HOLDS and apart.interval[1] == 1.0 and 0.25 < apart.interval[0] <= apart.diff < 1.0
    assert apart.how == "sign-flip permutation over 16 facts × 1 pair (2000 draws), p = 0.0005"
    # differences that cancel over the facts: the table's order sensitivity is 0 too, no verdict of "holds"
    mixed = c.evaluate(_reader(_order_tables(c, {"ft→wanda": [1.0, 0.0] * 8, "wanda→ft": [0.0, 1.0] * 8, **unlearn})))
    assert mixed.interval[1] == 0.0 and mixed.verdict == NOISE
    # a small difference on one fact of 16 -> the old sign rule said "holds"; the test says noise
    one = {"ft→wanda": [1.0] * 16, "wanda→ft": [1.0] * 15 + [0.0], **unlearn}
    o = c.evaluate(_reader(_order_tables(c, one)))
    assert o.interval[1] == pytest.approx(1 / 16) and o.verdict == NOISE and o.numbers.startswith("order sensitivity of edit success 0.06")
    assert "facts" not in o.numbers  # the items' T equals the table's mean order sensitivity
    # results without items: the sign of the table's mean, no interval, and the row says so
    tables = _order_tables(c, one)
    tables.update({p: tables[p].iloc[:0] for p in c.inputs[1:]})
    old = c.evaluate(_reader(tables))
    assert old.diff == pytest.approx(1 / 16) and old.interval is None and old.verdict == HOLDS and "no per-fact items" in old.numbers
    assert c.evaluate(_reader({**tables, c.inputs[0]: tables[c.inputs[0]].iloc[1:]})).verdict == UNTESTABLE


@pytest.mark.parametrize("name", ["smoke", "config"])
def test_claims_are_unique_and_link_to_report_items(name):
    cfg = _config(name)
    claims = verdicts.collect(cfg)
    assert claims and len({c.id for c in claims}) == len(claims)
    assert {c.line for c in claims} == {line.name for line in lines.active(cfg)}  # every line states claims
    items = set(lines.targets(cfg))
    for c in claims:
        assert c.link in items, (c.id, c.link)
        assert all(p.startswith("results/") for p in c.inputs)
    assert set(verdicts.inputs(cfg)) == {p for c in claims for p in c.inputs}


def test_a_repeated_claim_id_fails(monkeypatch):
    cfg = _config("smoke")
    one = verdicts.collect(cfg)[0]
    monkeypatch.setattr(lines, "claims", lambda config: [one, one])
    with pytest.raises(ValueError, match=re.escape(one.id)):
        verdicts.collect(cfg)


# ---------------------------------------------------------------- clean reStructuredText
def _categories() -> list[str]:
    text = "".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    return sorted(set(re.findall(r'category="([^"]+)"', text)))


def test_category_names_make_distinct_link_targets():
    """Snakemake appends `.. _<category>: javascript:...` to every caption; a colon ends a
    target name, so "Vision: PASS" and "Vision: MoE fusion" both became the target
    "vision" and the front page showed a duplicate-target System Message."""
    cats = _categories()
    assert "Vision (PASS)" in cats and not [c for c in cats if ":" in c]
    assert verdicts.rst_problems("Text.\n" + verdicts.report_links(cats, ["a.png", "b.csv"])) == []
    assert verdicts.rst_problems("Text.\n" + verdicts.report_links(["Vision: A", "Vision: B"], [])) != []  # the old failure


def _render_caption(path: Path, cfg: dict) -> str:
    snakemake = SimpleNamespace(
        wildcards=SimpleNamespace(model="tiny", table="pruning-tiny"),
        config=cfg,
        params=SimpleNamespace(caption=(REPORT / "pruning_table.rst").read_text()),
        input=SimpleNamespace(table="results/tables/pruning-tiny.csv"),
    )
    return jinja2.Template(path.read_text(), undefined=jinja2.StrictUndefined).render(snakemake=snakemake)


# the workflow descriptions (the front page and its parts) are not captions
DESCRIPTIONS = {"workflow.rst", "workflow-no-verdicts.rst", "intro.rst"}


@pytest.mark.parametrize("caption", sorted(p.name for p in REPORT.glob("*.rst") if p.name not in DESCRIPTIONS))
def test_every_caption_is_clean_restructured_text(caption):
    text = _render_caption(REPORT / caption, _config("smoke"))
    assert len(text.split()) >= 12, "a caption says what is plotted, on which model and data, and how to read it"
    assert verdicts.rst_problems(text + verdicts.report_links(_categories(), ["x.png"])) == []


def test_the_front_page_is_clean_with_awkward_text(tmp_path, monkeypatch):
    rows = [
        {
            "line": "pruning",
            "paper": "A_B *C*",
            "claim": "x_y `z` | w \\ v",
            "anchor": "≤ 2 *",
            "source": "Table_1",
            "this_run": "1.0 → 2.0",
            "noise": "one run, no interval",
            "verdict": HOLDS,
            "link": "results/figures/pruning-tiny.png",
        }
    ] * 3
    meta = verdicts.run_meta(["config/smoke.yaml"], {"tiny": {"source": "tiny"}}, {"hidden_size": 32, "num_layers": 2}, {"cpu"}, "today")
    page = verdicts.front_page(rows, meta)
    assert page.count("   * - pruning") == 3 and ":config: config/smoke.yaml" in page
    assert verdicts.rst_problems(page + verdicts.report_links([], ["pruning-tiny.png"])) == []
    # the workflow description includes it, relative to the report's working directory
    (tmp_path / "results" / "report").mkdir(parents=True)
    (tmp_path / "results" / "report" / "front.rst").write_text(page)
    (tmp_path / "workflow" / "report").mkdir(parents=True)
    (tmp_path / "workflow" / "report" / "intro.rst").write_text((REPORT / "intro.rst").read_text())
    monkeypatch.chdir(tmp_path)
    desc = (REPORT / "workflow.rst").read_text()
    assert ".. include:: results/report/front.rst" in desc
    assert verdicts.rst_problems(desc + verdicts.report_links(_categories(), ["pruning-tiny.png"])) == []
    # a report of selected targets, built before the verdicts exist, uses the page without them
    (tmp_path / "results" / "report" / "front.rst").unlink()
    bare = (REPORT / "workflow-no-verdicts.rst").read_text()
    assert "front.rst" not in bare
    assert verdicts.rst_problems(bare + verdicts.report_links(_categories(), ["pruning-tiny.png"])) == []


# ---------------------------------------------------------------- HTML tables
class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.heads = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.rows[-1].append(dict(attrs))


def test_html_table_sortable_without_nan():
    t = pd.DataFrame({"method": ["wanda", "sparsegpt"], "perplexity": [125.04, float("nan")], "n": [3, 4], "config": ["{}", "{}"]})
    page = htmltable.to_html(t, "pruning-tiny.csv")
    table = page.split("<table", 1)[1]
    assert not re.search(r"\bnan\b", table, re.I) and "config" not in table
    p = _Cells()
    p.feed(page)
    body = [r for r in p.rows if r]
    assert len(body) == 2 and body[0][1] == {"class": "n", "data-v": "125.04"} and body[1][1] == {}
    assert 'class="sortable"' in page and "Columns config (run provenance" in page


def test_pruning_paper_table_has_no_nan_and_no_question_mark():
    from compbench.prune import plots

    t = pd.DataFrame(
        [
            ("dense", "dense", 0.0, 100.0),
            ("wanda", "uniform", 0.7, 125.0),
            ("wanda", "alpha", 0.7, 146.0),
            ("wanda", "2:4", 0.5, 108.0),
            ("wanda", "alpha-eps0.1", 0.7, 999.0),
        ],
        columns=["method", "allocation", "target", "perplexity"],
    ).assign(dataset="tiny")
    bare = plots.paper_table(t, {})
    assert plots.PAPER_COLUMN not in bare and list(bare.index) == ["dense", "wanda / 2:4", "wanda / alpha", "wanda / uniform"]
    assert bare.loc["dense", "0.7"] == 100.0 and math.isnan(bare.loc["wanda / 2:4", "0.7"])
    withp = plots.paper_table(t, {"dense": 5.68, "wanda/uniform": 85.77})
    assert withp.loc["wanda / uniform", plots.PAPER_COLUMN] == 85.77 and withp.loc["dense", plots.PAPER_COLUMN] == 5.68
    fig = plots.pruning_paper_table(t, {}, "tiny")
    texts = [c.get_text().get_text() for c in fig.axes[0].tables[0].get_celld().values()]
    assert "nan" not in texts and "–" in texts and "?" not in fig.axes[0].get_title()

"""The speech line over seeds (torch-free): per-utterance errors of every run and seed, the
summary table (per run and metric: mean, sd and 95 % interval) and the paired comparison of
two runs that the claims use (compbench.stats).

A WER is corpus-level: sum of word errors / sum of reference words. Its interval: t over the
seeds' WERs with >= 3 seeds, else a bootstrap over the test utterances (each resample draws
utterances with replacement and recomputes errors / words, averaged over the seeds). Two runs
are compared on the same utterances with the same draws (paired)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compbench import stats

ITEM_COLUMNS = ["run", "seed", "split", "id", "word_errors", "ref_words", "char_errors", "ref_chars"]
UNITS = {"wer": ("word_errors", "ref_words"), "cer": ("char_errors", "ref_chars")}


def items_table(hypotheses: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-utterance errors of every run and seed (the ``hypotheses.csv`` files, without the texts)."""
    t = pd.concat(hypotheses, ignore_index=True)
    missing = set(ITEM_COLUMNS) - set(t.columns)
    if missing:
        raise ValueError(f"hypotheses lack the per-utterance columns {sorted(missing)}: rerun speech_train")
    return t[ITEM_COLUMNS]


def arrays(items: pd.DataFrame, run: str, split: str, seeds, unit: str = "wer") -> tuple[np.ndarray, np.ndarray]:
    """(errors [n_seeds, n_utts], reference lengths [n_seeds, n_utts]) of ``run`` on ``split``,
    utterances in id order; every seed must hold the same utterances."""
    err, ref = UNITS[unit]
    nums, dens, ids = [], [], None
    for s in seeds:
        g = items[(items.run == run) & (items.split == split) & (items.seed.astype(int) == int(s))].sort_values("id")
        if g.empty:
            raise ValueError(f"no per-utterance results of run {run!r}, seed {s}, split {split!r}")
        if ids is not None and list(g.id) != ids:
            raise ValueError(f"run {run!r}: seed {s} was evaluated on other {split} utterances than seed {seeds[0]}")
        ids = list(g.id)
        nums.append(g[err].to_numpy(float))
        dens.append(g[ref].to_numpy(float))
    return np.stack(nums), np.stack(dens)


def rate(items: pd.DataFrame, run: str, split: str, seeds, unit: str = "wer") -> stats.Summary:
    """A run's WER (or CER) on a split: mean over seeds, sd, interval."""
    num, den = arrays(items, run, split, seeds, unit)
    return stats.summarise(num.sum(1) / den.sum(1), stats.seed_mean_ratio(num, den), num.shape[1], what=f"{split} utterances")


def difference(items: pd.DataFrame, a: str, b: str, split: str = "test", unit: str = "wer", seeds=None) -> stats.Summary:
    """rate(a) − rate(b) on the same utterances: over the seeds both runs have (default), paired
    by seed for the t-interval and by utterance for the bootstrap."""
    if seeds is None:
        have = [set(items[items.run == r].seed.astype(int)) for r in (a, b)]
        seeds = sorted(have[0] & have[1])
    if not seeds:
        raise ValueError(f"runs {a!r} and {b!r} share no seed")
    na, da = arrays(items, a, split, seeds, unit)
    nb, db = arrays(items, b, split, seeds, unit)
    if na.shape != nb.shape or not np.array_equal(da, db):
        raise ValueError(f"runs {a!r} and {b!r} were evaluated on different {split} utterances")
    ra, rb = stats.seed_mean_ratio(na, da), stats.seed_mean_ratio(nb, db)
    return stats.summarise(
        na.sum(1) / da.sum(1) - nb.sum(1) / db.sum(1), lambda idx: ra(idx) - rb(idx), na.shape[1], what=f"{split} utterances"
    )


def summary(table: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per run and metric: n_seeds, mean, sd, ci_lo, ci_hi and how the interval was computed.
    {dev,test}_{wer,cer} get the bootstrap over utterances when seeds are too few for t."""
    t = table[table.metric != "info"].copy()
    t["value"] = pd.to_numeric(t["value"])
    rows = []
    for (run, variant, metric), g in t.groupby(["run", "variant", "metric"], sort=False):
        g = g.sort_values("seed")
        split, _, unit = metric.partition("_")
        if unit in UNITS and split in set(items.split):
            s = rate(items, run, split, list(g.seed.astype(int)), unit)
        else:
            s = stats.summarise(g.value.to_numpy(float))
        rows.append({"run": run, "variant": variant, "metric": metric, "seeds": " ".join(str(int(x)) for x in g.seed), **s.row()})
    return pd.DataFrame(rows)

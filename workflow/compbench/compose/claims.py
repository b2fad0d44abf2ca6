"""The composability line's paper claims (Composable Interventions), decided on
this run's compose tables (compbench.verdicts); the claim on edit success with a
paired bootstrap interval over the edited facts, the one on order sensitivity with a
sign-flip permutation test over them (rule compose_run's items tables)."""

from __future__ import annotations

from functools import partial

from compbench.compose.grid import runs as compose_runs
from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable, with_summary

PAPER = "Composable Interventions (Kolbeinsson et al., ICLR 2025)"
SOURCE = "Kolbeinsson et al., arXiv:2407.06483, abstract: Llama-3-8B, 310+ compositions"
claim = partial(Claim, line="compose", paper=PAPER, source=SOURCE)  # every claim of this line


def _filled(t):
    return t.fillna({"first": "", "second": "", "first_category": "", "second_category": ""})


def _fact_items(read, paths, metric: str) -> dict:
    """Order name (e.g. "ft→wanda") -> each fact's value of ``metric`` (rule compose_run's items tables)."""
    out = {}
    for p in paths:
        t = read(p)
        for order, g in t[t["metric"] == metric].groupby("order"):
            out[order] = g.sort_values("item")["value"].to_numpy(dtype=float)
    return out


def compression_hurts_editing(read, path: str, items_paths=()) -> Outcome:
    """Edit success of each editor alone minus its mean over both orders with each
    compressor; the difference is the mean over the (editor, compressor) pairs. The
    interval is a paired bootstrap over the edited facts (every run edits the same facts)."""
    import numpy as np

    from compbench import stats

    t = _filled(read(path))
    t = t[t["metric"] == "edit_success"]
    alone = t[(t["second"] == "") & (t["first_category"] == "edit")].groupby("first")["value"].mean()
    pairs = t[(t["second"] != "")]
    drops, parts, terms = [], [], []
    for editor, base in alone.items():
        for _, r in pairs[(pairs["first"] == editor) & (pairs["second_category"] == "compress")].iterrows():
            back = pairs[(pairs["first"] == r["second"]) & (pairs["second"] == editor)]
            if len(back):
                composed = (float(r["value"]) + float(back["value"].iloc[0])) / 2
                drops.append(float(base) - composed)
                parts.append(f"{editor} {base:.2f} → with {r['second']} {composed:.2f}")
                if "order" in t.columns:
                    solo = list(t[(t["second"] == "") & (t["first"] == editor)]["order"])
                    terms.append((solo, r["order"], back["order"].iloc[0]))
    if not drops:
        return untestable("no editor runs alone and with a compressor in both orders")
    diff = sum(drops) / len(drops)
    noise = None
    facts = _fact_items(read, items_paths, "edit_success")
    used = {o for solo, ab, ba in terms for o in (*solo, ab, ba)}
    if terms and used <= set(facts) and len({facts[o].size for o in used}) == 1:
        n = facts[next(iter(used))].size

        def stat(idx):
            m = {o: facts[o][idx].mean(-1) for o in used}
            return np.mean([np.mean([m[o] for o in solo], 0) - (m[ab] + m[ba]) / 2 for solo, ab, ba in terms], axis=0)

        noise = stats.summarise([diff], stat, n, what="edited facts")
    return with_summary("; ".join(parts) + f" (edit success; mean drop {diff:+.2f})", diff, noise)


def _order_diffs(read, pairs, items_paths):
    """[n_pairs, n_facts]: each fact's edit success in the order A→B minus B→A for the
    (first, second) ``pairs``; None when a pair's two orders lack per-fact items or the facts'
    counts differ. The order names are compose_run's ("→".join of the interventions)."""
    import numpy as np

    facts = _fact_items(read, items_paths, "edit_success")
    orders = [(f"{a}→{b}", f"{b}→{a}") for a, b in pairs]
    if not orders or any(o not in facts for ab_ba in orders for o in ab_ba):
        return None
    if len({facts[o].size for ab_ba in orders for o in ab_ba}) != 1:
        return None
    return np.stack([facts[ab] - facts[ba] for ab, ba in orders])


def order_sensitivity_stat(d):
    """The order sensitivity of per-fact differences ``d`` [..., n_pairs, n_facts]: the mean over
    the pairs of |mean over the facts| (= the mean of |m(A→B) − m(B→A)| over the pairs)."""
    import numpy as np

    return np.abs(np.asarray(d).mean(-1)).mean(-1)


def order_matters(read, path: str, items_paths=()) -> Outcome:
    """Mean order sensitivity T = mean over the edit × compress pairs of |m(A→B) − m(B→A)| of
    edit success, tested against the null "the order changes nothing".

    T is a mean of absolute values, so it is positive whenever the orders differ on any fact;
    its sign says nothing. The test: per pair and edited fact i, d_i = m_i(A→B) − m_i(B→A)
    (rule compose_run's items tables); under the null the two orders' labels of a fact are
    exchangeable, so each d_i's sign is arbitrary. 2000 draws flip every d_i's sign
    independently (seeded, :func:`compbench.stats.sign_flip_test`) and recompute T;
    p = (1 + #{T_null >= T}) / (1 + draws). The outcome's difference is T − median(T_null)
    and its interval (T − q95, T), with q95 the null's one-sided 95 % threshold
    (:func:`compbench.stats.null_threshold`): the verdict is "holds" iff T > q95 (iff p <= 0.05),
    else "within noise" (T >= 0, so never "does not hold"). Without per-fact items (results
    from before they were written) the verdict is the sign of T, with no interval, and says so."""
    from compbench import stats

    t = read(path)
    t = t[(t["metric"] == "edit_success") & (t["categories"] == "compress×edit")]
    if t.empty:
        return untestable("no edit × compress pair")
    s = t["order_sensitivity"].astype(float)
    numbers = f"order sensitivity of edit success {s.mean():.2f} on average over {len(s)} pairs (max {s.max():.2f})"
    d = _order_diffs(read, zip(t["first"], t["second"]), items_paths) if {"first", "second"} <= set(t.columns) else None
    if d is None:
        return Outcome(numbers=numbers + " (no per-fact items: no null test, the sign of a mean of |differences|)", diff=float(s.mean()))
    test = stats.sign_flip_test(d, order_sensitivity_stat)
    if abs(test.observed - s.mean()) > 1e-9:
        numbers += f"; {test.observed:.2f} from the per-fact items"
    how = f"sign-flip permutation over {d.shape[1]} facts × {d.shape[0]} pair{'s' * (d.shape[0] != 1)} ({test.n_draws} draws), p = {test.p:.3g}"
    return Outcome(
        numbers=numbers + f"; null: median {test.median:.3f}, 95 % {test.threshold:.3f}",
        diff=test.observed - test.median,
        interval=(test.observed - test.threshold, test.observed),
        how=how,
    )


def claims(config: dict) -> list[Claim]:
    out = []
    for m in config.get("models", {}):
        runs, pairs = f"{RESULTS}/tables/compose-{m}.csv", f"{RESULTS}/tables/composability-{m}.csv"
        items = tuple(f"{RESULTS}/compose/{m}/items/{r}.csv" for r in compose_runs(config))
        out += [
            claim(
                id=f"compose/compression-hurts-editing/{m}",
                statement=f"Compression hinders knowledge editing: edit success drops when an edit is composed with compression ({m})",
                anchor="compression hinders editing and unlearning (a finding; no single number in the abstract)",
                link=f"{RESULTS}/figures/compose-sparsity-{m}.png",
                inputs=(runs, *items),
                evaluate=lambda read, runs=runs, items=items: compression_hurts_editing(read, runs, items),
            ),
            claim(
                id=f"compose/order-matters/{m}",
                statement=f"The order of editing and compression changes the outcome: order sensitivity of edit success above 0 ({m})",
                anchor="composing interventions hinges on their order (a finding; no single number in the abstract)",
                link=f"{RESULTS}/figures/composability-{m}.png",
                inputs=(pairs, *items),
                evaluate=lambda read, pairs=pairs, items=items: order_matters(read, pairs, items),
            ),
        ]
    return out

"""The composability line's paper claims (Composable Interventions), decided on
this run's compose tables (compbench.verdicts); the claim on edit success with a
paired bootstrap interval over the edited facts (rule compose_run's items tables)."""

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


def order_matters(read, path: str) -> Outcome:
    """Mean order sensitivity |m(A→B) − m(B→A)| of edit success over the edit × compress pairs.

    No interval: the statistic is an absolute value, so noise alone makes it positive, and a
    percentile bootstrap of it over facts lies above 0 whenever the two orders differ on any
    fact; it would call every pair's order significant. A fair test needs a null distribution
    of |m(A→B) − m(B→A)| (e.g. the orders' labels permuted per fact), which is not done here."""
    t = read(path)
    t = t[(t["metric"] == "edit_success") & (t["categories"] == "compress×edit")]
    if t.empty:
        return untestable("no edit × compress pair")
    s = t["order_sensitivity"].astype(float)
    return Outcome(
        numbers=f"order sensitivity of edit success {s.mean():.2f} on average over {len(s)} pairs (max {s.max():.2f})", diff=float(s.mean())
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
                inputs=(pairs,),
                evaluate=lambda read, pairs=pairs: order_matters(read, pairs),
            ),
        ]
    return out

"""The composability line's paper claims (Composable Interventions), decided on
this run's compose tables (compbench.verdicts)."""

from __future__ import annotations

from functools import partial

from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable

PAPER = "Composable Interventions (Kolbeinsson et al., ICLR 2025)"
SOURCE = "Kolbeinsson et al., arXiv:2407.06483, abstract: Llama-3-8B, 310+ compositions"
claim = partial(Claim, line="compose", paper=PAPER, source=SOURCE)  # every claim of this line


def _filled(t):
    return t.fillna({"first": "", "second": "", "first_category": "", "second_category": ""})


def compression_hurts_editing(read, path: str) -> Outcome:
    """Edit success of each editor alone minus its mean over both orders with each
    compressor; the difference is the mean over the (editor, compressor) pairs."""
    t = _filled(read(path))
    t = t[t["metric"] == "edit_success"]
    alone = t[(t["second"] == "") & (t["first_category"] == "edit")].groupby("first")["value"].mean()
    pairs = t[(t["second"] != "")]
    drops, parts = [], []
    for editor, base in alone.items():
        for _, r in pairs[(pairs["first"] == editor) & (pairs["second_category"] == "compress")].iterrows():
            back = pairs[(pairs["first"] == r["second"]) & (pairs["second"] == editor)]
            if len(back):
                composed = (float(r["value"]) + float(back["value"].iloc[0])) / 2
                drops.append(float(base) - composed)
                parts.append(f"{editor} {base:.2f} → with {r['second']} {composed:.2f}")
    if not drops:
        return untestable("no editor runs alone and with a compressor in both orders")
    return Outcome(numbers="; ".join(parts) + f" (edit success; mean drop {sum(drops) / len(drops):+.2f})", diff=sum(drops) / len(drops))


def order_matters(read, path: str) -> Outcome:
    """Mean order sensitivity |m(A→B) − m(B→A)| of edit success over the edit × compress pairs."""
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
        out += [
            claim(
                id=f"compose/compression-hurts-editing/{m}",
                statement=f"Compression hinders knowledge editing: edit success drops when an edit is composed with compression ({m})",
                anchor="compression hinders editing and unlearning (a finding; no single number in the abstract)",
                link=f"{RESULTS}/figures/compose-sparsity-{m}.png",
                inputs=(runs,),
                evaluate=lambda read, runs=runs: compression_hurts_editing(read, runs),
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

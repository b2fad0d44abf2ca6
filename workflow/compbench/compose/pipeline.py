"""Composing interventions, and the composability metrics (Kolbeinsson et al.,
"Composable Interventions for Language Models", ICLR 2025).

An intervention id names an entry of ``compose.interventions`` in the config
(``{method: <registered name>, <setting>: value, …}``); ``<id>-s<sparsity>``
is that entry with its ``sparsity`` overridden (the sparsity sweep). A run
applies a sequence of ids to a fresh copy of the model and evaluates the result.

The paper's rule for compression: when a compressor comes before another
intervention, it is applied again at the end, so the final model really is
compressed (otherwise an edit or an unlearning step would refill pruned weights
or move them off the quantisation grid).

Metrics (all on the final model): edit success, generalisation (paraphrases),
locality (token F1 of locality answers against the unedited model's), forget
accuracy (the hazardous topic's multiple choice, lower is better), utility
accuracy (general-knowledge multiple choice, the MMLU stand-in), perplexity,
average bits. For a pair A, B and a metric m with error e(m) (1 − m for an
accuracy, m itself where lower is better):

* order-free error  = min(e(A→B), e(B→A))
* order sensitivity = |m(A→B) − m(B→A)|
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from compbench.compose.interventions.methods import INTERVENTIONS, Context, Intervention

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
SWEEP = re.compile(r"^(?P<base>.+)-s(?P<sparsity>0\.\d+)$")
SEP = "__"


@dataclass(frozen=True)
class Step:
    id: str
    intervention: Intervention
    params: dict

    @property
    def category(self) -> str:
        return self.intervention.category


def resolve(iid: str, interventions: dict) -> Step:
    """The intervention and settings an id stands for (see the module docstring)."""
    if iid in interventions:
        spec = dict(interventions[iid])
    else:
        m = SWEEP.match(iid)
        if not m or m["base"] not in interventions:
            raise ValueError(
                f"unknown intervention id {iid!r}; allowed: {', '.join(interventions)} (or <id>-s<sparsity> of a pruning entry)"
            )
        spec = dict(interventions[m["base"]])
        if "sparsity" not in spec:
            raise ValueError(f"intervention id {iid!r}: {m['base']!r} has no sparsity to sweep")
        spec["sparsity"] = float(m["sparsity"])
    method = spec.pop("method", None)
    if method is None:
        raise ValueError(f"compose.interventions.{iid} names no method; allowed: {', '.join(INTERVENTIONS.names())}")
    return Step(iid, INTERVENTIONS.get(method), spec)


def sequence_steps(seq: str, interventions: dict) -> list[Step]:
    """``"none"`` (the unchanged model), ``"a"`` or ``"a__b"`` (a, then b)."""
    if seq == "none":
        return []
    return [resolve(i, interventions) for i in seq.split(SEP)]


def with_recompression(steps: list[Step]) -> list[Step]:
    """The paper's rule: every compressor followed by a non-compression step is applied again at the end."""
    out = list(steps)
    for i, s in enumerate(steps):
        if s.category == "compress" and any(t.category != "compress" for t in steps[i + 1 :]):
            out.append(s)
    return out


def apply(model, ctx: Context, steps: list[Step]) -> list[dict]:
    infos = []
    for s in with_recompression(steps):
        ctx.log(f"applying {s.id} ({s.intervention.name}, {s.category}) {s.params}")
        info = s.intervention(model, ctx, **s.params)
        infos.append({"id": s.id, "method": s.intervention.name, "category": s.category, **info})
    return infos


def avg_bits(infos: list[dict]) -> float:
    """Average bits per weight of the final model: the last compressor's (they are re-applied last)."""
    bits = [i["avg_bits"] for i in infos if i["category"] == "compress" and "avg_bits" in i]
    return float(bits[-1]) if bits else DENSE_BITS


def evaluate(model, ctx: Context, base_predictions, ppl_ids, seq_len: int, ppl_windows: int, batch_size: int = 8) -> dict:
    """Every metric of the study on ``model`` (see the module docstring)."""
    from compbench.compose import metrics as em
    from compbench.perplexity import evaluate as perplexity

    d, tok, dev = ctx.data, ctx.tokenizer, ctx.device
    model.eval()
    return {
        "edit_success": em.edit_success(model, tok, d.edits, dev),
        "generalisation": em.generalisation(model, tok, d.edits, dev),
        "locality": em.locality(base_predictions, em.predictions(model, tok, d.locality, dev)),
        "forget_acc": em.mcq_accuracy(model, tok, d.forget_mcq, dev),
        "utility_acc": em.mcq_accuracy(model, tok, d.utility_mcq, dev),
        "perplexity": perplexity(model, ppl_ids, seq_len, batch_size, dev, ppl_windows)["perplexity"],
    }


# ------------------------------------------------------------ composability


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

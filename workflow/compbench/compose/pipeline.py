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
average bits; the pair metrics (order-free error, order sensitivity) are in
:mod:`compbench.compose.composability`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compbench.compose.composability import DENSE_BITS
from compbench.compose.interventions.methods import INTERVENTIONS, Context, Intervention

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


def apply(model, ctx: Context, steps: list[Step], done: list[dict] = ()) -> list[dict]:
    """Apply ``steps`` (with the paper's recompression) to ``model`` in place; the infos of
    each step. ``done``: the infos of the leading steps already applied (a first step read
    from rule compose_first's cache, :func:`restore`); those are not applied again. Every
    intervention seeds itself from ``ctx.seed``, so a cached first step leaves the model
    and the later steps exactly as applying it here would."""
    infos = list(done)
    for s in with_recompression(steps)[len(infos) :]:
        ctx.log(f"applying {s.id} ({s.intervention.name}, {s.category}) {s.params}")
        info = s.intervention(model, ctx, **s.params)
        infos.append({"id": s.id, "method": s.intervention.name, "category": s.category, **info})
    return infos


def load_study(model_dir, data_json, calibration, memit_stats, device, seed: int, log):
    """What a composability job starts from: the unchanged model and the :class:`Context`
    every intervention gets (tokenizer, the study's data, calibration ids, MEMIT's statistics)."""
    from pathlib import Path

    from compbench import models, tokenizer
    from compbench.artifacts import load_tensors, read_json
    from compbench.compose.interventions.registry import StudyData

    tok = tokenizer.load(model_dir)
    data = StudyData.from_json(read_json(data_json))
    calib = load_tensors(calibration)["ids"]
    ctx = Context(tok, device, data, calib, cache_dir=Path(memit_stats) if memit_stats else None, seed=seed, log=log)
    return models.load(model_dir, device=device), ctx


def changed_tensors(model, base) -> dict:
    """The entries of ``model``'s state dict that differ (bitwise) from ``base``'s: what one
    intervention changed, to be cached compactly (MEMIT touches a few MLP matrices, a
    pruner every linear one). Tied weights appear under each of their names."""
    import torch

    ref = base.state_dict()
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items() if not torch.equal(v, ref[k])}


def restore(model, changed: dict) -> None:
    """Put ``changed`` (:func:`changed_tensors` of an intervened model) into ``model``, a
    copy of the same base; every name must be one of the model's."""
    missing, unexpected = model.load_state_dict(changed, strict=False)
    if unexpected:
        raise ValueError(f"cached intervention names tensors the model does not have: {sorted(unexpected)[:5]}")


def avg_bits(infos: list[dict]) -> float:
    """Average bits per weight of the final model: the last compressor's (they are re-applied last)."""
    bits = [i["avg_bits"] for i in infos if i["category"] == "compress" and "avg_bits" in i]
    return float(bits[-1]) if bits else DENSE_BITS


def evaluate(
    model, ctx: Context, base_predictions, ppl_ids, seq_len: int, ppl_windows: int, batch_size: int = 8, items: dict | None = None
) -> dict:
    """Every metric of the study on ``model`` (see the module docstring). ``items``, if given,
    receives the per-fact edit success (``items["edit_success"]``: each edit's token accuracy,
    whose mean is the metric) for the verdicts' bootstrap over facts."""
    from compbench.compose import metrics as em
    from compbench.perplexity import evaluate as perplexity

    d, tok, dev = ctx.data, ctx.tokenizer, ctx.device
    model.eval()
    per_edit = em.edit_success_items(model, tok, d.edits, dev)
    if items is not None:
        items["edit_success"] = [float(x) for x in per_edit]
    return {
        "edit_success": sum(per_edit) / len(per_edit) if per_edit else float("nan"),
        "generalisation": em.generalisation(model, tok, d.edits, dev),
        "locality": em.locality(base_predictions, em.predictions(model, tok, d.locality, dev)),
        "forget_acc": em.mcq_accuracy(model, tok, d.forget_mcq, dev),
        "utility_acc": em.mcq_accuracy(model, tok, d.utility_mcq, dev),
        "perplexity": perplexity(model, ppl_ids, seq_len, batch_size, dev, ppl_windows)["perplexity"],
    }

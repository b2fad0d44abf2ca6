"""Composable interventions: the knowledge world, composition with the paper's
re-compression rule, and the composability metrics on hand-made numbers."""

import random

import pandas as pd
import pytest
import torch
from compose_world import knowing_model, tiny_model, world_setup  # noqa: F401  (shared fixtures)

from compbench.compose import composability
from compbench.compose import data as compose_data
from compbench.compose import pipeline as compose
from compbench.compose.interventions.methods import INTERVENTIONS, Context
from compbench.knowledge import PEOPLE, World, prompt_of

# ------------------------------------------------------------ the metrics


def test_order_free_error_and_sensitivity_on_hand_made_numbers():
    # accuracy-like: error = 1 - m; the better order's error
    assert composability.order_free_error("edit_success", 0.9, 0.4) == pytest.approx(0.1)
    assert composability.order_free_error("utility_acc", 0.3, 0.7) == pytest.approx(0.3)
    # lower is better: error = m
    assert composability.order_free_error("forget_acc", 0.55, 0.30) == pytest.approx(0.30)
    assert composability.order_free_error("perplexity", 41.0, 39.5) == pytest.approx(39.5)
    assert composability.order_sensitivity(0.9, 0.4) == pytest.approx(0.5)
    assert composability.order_sensitivity(0.4, 0.9) == pytest.approx(0.5)
    with pytest.raises(KeyError, match="unknown composability metric 'bleu'.*allowed"):
        composability.error("bleu", 1.0)


def _row(first, second, fc, sc, metric, value):
    return {"first": first, "second": second, "first_category": fc, "second_category": sc, "metric": metric, "value": value}


def test_composability_table_from_both_orders():
    rows = [
        _row("ft", "wanda", "edit", "compress", "edit_success", 0.8),
        _row("wanda", "ft", "compress", "edit", "edit_success", 0.95),
        _row("ft", "wanda", "edit", "compress", "forget_acc", 0.5),  # not a metric of edit x compress
        _row("wanda", "ft", "compress", "edit", "forget_acc", 0.2),
        _row("ft", "wanda", "edit", "compress", "perplexity", 30.0),
        _row("wanda", "ft", "compress", "edit", "perplexity", 33.0),
        _row("ft", "", "edit", "", "edit_success", 1.0),  # a single run is not a pair
    ]
    t = composability.composability(pd.DataFrame(rows)).set_index("metric")
    assert set(t.index) == {"edit_success", "perplexity"}
    assert t.loc["edit_success", "order_free_error"] == pytest.approx(0.05)
    assert t.loc["edit_success", "order_sensitivity"] == pytest.approx(0.15)
    assert t.loc["perplexity", "order_free_error"] == pytest.approx(30.0)
    assert t.loc["perplexity", "order_sensitivity"] == pytest.approx(3.0)
    assert (t["pair"] == "ft+wanda").all()
    with pytest.raises(ValueError, match="only the order ft→wanda"):
        composability.composability(pd.DataFrame(rows[:1] + rows[2:3]))


# ------------------------------------------------------------ ids and the re-compression rule

IVS = {
    "ft": {"method": "ft"},
    "wanda": {"method": "wanda", "sparsity": 0.5},
    "ga": {"method": "ga"},
    "gptq": {"method": "gptq", "bits": 4, "group_size": 32},
}


def test_resolve_ids_and_sweep_ids():
    s = compose.resolve("wanda-s0.3", IVS)
    assert s.intervention.name == "wanda" and s.params == {"sparsity": 0.3} and s.category == "compress"
    assert [x.id for x in compose.sequence_steps("ft__wanda", IVS)] == ["ft", "wanda"]
    assert compose.sequence_steps("none", IVS) == []
    with pytest.raises(ValueError, match="unknown intervention id 'foo'.*allowed: ft, wanda, ga"):
        compose.resolve("foo", IVS)
    with pytest.raises(ValueError, match="'ft' has no sparsity"):
        compose.resolve("ft-s0.3", IVS)


def test_recompression_rule():
    ids = lambda seq: [s.id for s in compose.with_recompression(compose.sequence_steps(seq, IVS))]  # noqa: E731
    assert ids("wanda__ft") == ["wanda", "ft", "wanda"]
    assert ids("ft__wanda") == ["ft", "wanda"]
    assert ids("gptq__ga") == ["gptq", "ga", "gptq"]
    assert ids("ga__ft") == ["ga", "ft"]


def _zeros_per_row(model):
    from compbench.blocks import linear_modules

    return {n: (m.weight == 0).sum(1) for _, n, m in linear_modules(model)}


@pytest.mark.parametrize("editor", ["ft", "lora"])
def test_reapplying_compression_after_editing_restores_the_exact_sparsity(world_setup, editor):
    _, tok, data, ids = world_setup
    ivs = {**IVS, "lora": {"method": "lora"}}
    ctx = Context(tok, torch.device("cpu"), data, ids)
    pruned = tiny_model()
    compose.apply(pruned, ctx, compose.sequence_steps("wanda", ivs))
    want = _zeros_per_row(pruned)
    for n, z in want.items():  # Wanda: exactly half of every row
        cols = dict(pruned.named_modules())[n].in_features
        assert (z == cols // 2).all(), n
    edited = tiny_model()
    compose.apply(edited, ctx, compose.sequence_steps("wanda", ivs))
    INTERVENTIONS.get(editor)(edited, ctx)  # the edit alone refills pruned weights ...
    assert sum(int(z.sum()) for z in _zeros_per_row(edited).values()) < sum(int(z.sum()) for z in want.values())
    final = tiny_model()
    infos = compose.apply(final, ctx, compose.sequence_steps(f"wanda__{editor}", ivs))
    assert [i["id"] for i in infos] == ["wanda", editor, "wanda"]
    got = _zeros_per_row(final)  # ... and the paper's rule restores the exact sparsity
    assert all(torch.equal(got[n], want[n]) for n in want)
    assert infos[-1]["sparsity"] == pytest.approx(0.5, abs=1e-9)
    assert compose.avg_bits(infos) == pytest.approx(16 * 0.5 + 0.5)


# ------------------------------------------------------------ the knowledge world


def test_world_study_is_consistent():
    world = World(n_people=48, n_agents=24, seed=0)
    d = compose_data.world_study(world, n_edits=16, n_locality=8, seed=0)
    edit_subjects = {e.subject for e in d["edits"]}
    loc_subjects = {p.prompt for p in d["locality"]}
    assert len(edit_subjects) == 16 and len(d["locality"]) == 8
    for e in d["edits"]:
        assert e.target_new != e.target_true
        assert e.target_true == " " + world.value(e.subject, e.relation)
        assert e.prompt == prompt_of(PEOPLE[e.relation][1][0], e.subject) and len(e.paraphrases) == 2
    for p in d["locality"]:
        assert not any(s in p.prompt for s in edit_subjects)
    # utility questions: about neither edited nor probed people, the right answer among 4
    for q in d["utility_mcq"]:
        assert not any(s in q.prompt for s in edit_subjects) and q.prompt not in loc_subjects
        assert len(q.choices) == 4 and len(set(q.choices)) == 4
    assert len(d["utility_mcq"]) == (48 - 24) * len(PEOPLE)
    assert len(d["forget_mcq"]) == 24 * 3 and len(d["forget_texts"]) == 24 * 3 * 3
    for q in d["forget_mcq"]:
        subject = next(a for a in world.agents if a in q.prompt)
        rel = next(r for r, (_, ts) in world.relations(True).items() if any(prompt_of(t, subject) == q.prompt for t in ts))
        assert q.choices[q.label] == world.value(subject, rel)


def test_world_corpus_share_and_every_fact_stated():
    world = World(n_people=10, n_agents=3, seed=1)
    docs = world.corpus_documents(0.1, 90_000)
    total = sum(map(len, docs))
    assert 10_000 <= total < 10_000 + sum(map(len, world.documents(random.Random(0)))) + 1
    text = " ".join(docs)
    for f in world.facts:
        assert any(s in text for s in world.sentences(f)), f
    with pytest.raises(ValueError, match="n_people=0 must be in"):
        World(n_people=0)


# ------------------------------------------------------------ end to end (config/smoke.yaml)


@pytest.mark.workflow
def test_compose_line_in_the_smoke_run(smoke):
    import math

    runs = pd.read_csv(smoke.results("tables", "compose-tiny.csv"), keep_default_na=False)
    metrics = pd.read_csv(smoke.results("tables", "composability-tiny.csv"))
    orders = set(runs["order"])
    # every cross-category pair of the registry, in both orders, plus the sweep
    for a, b in [("ft", "wanda"), ("ft", "ga"), ("wanda", "ga"), ("ft", "wanda-s0.7")]:
        assert f"{a}→{b}" in orders and f"{b}→{a}" in orders, (a, b)
    assert {"none", "ft", "wanda", "ga"} <= orders
    assert all(math.isfinite(v) for v in runs["value"])
    bits = runs[runs["metric"] == "avg_bits"].set_index("order")["value"]
    # compression re-applied at the end: the same bits in both orders, dense elsewhere
    assert bits["ft→wanda"] == bits["wanda→ft"] == pytest.approx(16 * 0.5 + 0.5, abs=0.05)
    assert bits["ft→ga"] == bits["none"] == 16.0
    # the composability table is what its formulas give from the runs table
    val = runs.set_index(["order", "metric"])["value"]
    for r in metrics.itertuples():
        ab, ba = val[(f"{r.first}→{r.second}", r.metric)], val[(f"{r.second}→{r.first}", r.metric)]
        assert r.order_free_error == pytest.approx(composability.order_free_error(r.metric, ab, ba))
        assert r.order_sensitivity == pytest.approx(abs(ab - ba))
    assert set(metrics[metrics["pair"] == "ft+ga"]["metric"]) == {
        "edit_success",
        "generalisation",
        "locality",
        "forget_acc",
        "utility_acc",
        "perplexity",
    }
    for name in ("composability-tiny.png", "compose-sparsity-tiny.png"):
        assert smoke.results("figures", name).stat().st_size > 1000


def test_the_torch_free_catalogue_equals_the_registry():
    """compose/check.py and compose/grid.py read the interventions from their source
    (catalogue.py: no torch in Snakemake's process at DAG build); it holds exactly what the
    registry holds, and the grid's categories, MEMIT use and code modules of every run of
    the shipped configs are the registry's."""
    import sys

    import yaml

    from compbench.compose import grid
    from compbench.compose.interventions.catalogue import catalogue
    from conftest import ROOT

    def facts(i):
        return (i.category, tuple(i.params_allowed()), i.needs_calibration, sys.modules[i.fn.__module__].__name__)

    registry = {n: facts(INTERVENTIONS.get(n)) for n in INTERVENTIONS}
    assert {n: (e.category, e.params, e.needs_calibration, e.module) for n, e in catalogue().items()} == registry
    assert len(registry) >= 10
    for name in ["config.yaml", "smoke.yaml", "paper_composable.yaml"]:
        cfg = yaml.safe_load((ROOT / "config" / name).read_text())
        ivs = cfg["compose"]["interventions"]
        assert grid.categories(cfg) == {i: compose.resolve(i, ivs).category for i in ivs}
        for run in grid.runs(cfg):
            steps = compose.sequence_steps(run, ivs)
            assert grid.uses_memit(cfg, run) == any(s.intervention.name == "memit" for s in steps), (name, run)
            assert grid.run_modules(cfg, run) == sorted({sys.modules[s.intervention.fn.__module__].__name__ for s in steps}), (name, run)

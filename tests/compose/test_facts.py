"""The composability study's real-world facts source (compbench.compose.facts):
the table, the knowledge check (which facts the dense model knows) and the study
built from the known ones."""

from __future__ import annotations

import random

import pytest

from compbench.compose import data as compose_data
from compbench.compose import facts, metrics


def test_table_is_usable():
    for rel, (templates, table) in facts.RELATIONS.items():
        assert all(t.count("{}") == 1 for t in templates), rel
        assert len(templates) >= 2, f"{rel}: paraphrases need a second template"
        assert len(set(table.values())) >= 4, f"{rel}: too few values for 3 distractors"
    assert facts.FORGET_RELATION in facts.RELATIONS


def test_distractors_are_other_values_of_the_relation():
    rng = random.Random(0)
    for rel, s, v in facts.candidates():
        d = facts.distractors(rel, v, rng)
        assert len(set(d)) == 3 and v not in d
        assert set(d) <= set(facts.RELATIONS[rel][1].values())


def test_knowledge_check_needs_both_greedy_and_multiple_choice(monkeypatch):
    """A fact is known only when the true value wins the 4-way question AND is the
    greedy first token; the rows stay aligned with the candidate facts."""
    items = facts.probe_items(0)
    rng = random.Random(1)
    mcq_right = [rng.random() < 0.5 for _ in items]
    greedy_right = [rng.random() < 0.5 for _ in items]

    def fake_loglik(model, tok, mcqs, device):
        return [[1.0 if (i == q.label) == ok else 0.0 for i in range(len(q.choices))] for q, ok in zip(mcqs, mcq_right)]

    def fake_argmax(model, tok, prompts, targets, device):
        return [([7] if ok else [8], [7]) for ok in greedy_right]

    monkeypatch.setattr(metrics, "choice_loglik", fake_loglik)
    monkeypatch.setattr(metrics, "_argmax_at_targets", fake_argmax)
    rows = facts.knowledge_check(None, None, "cpu")
    assert [(r["relation"], r["subject"], r["value"]) for r in rows] == facts.candidates()
    assert [r["mcq"] for r in rows] == mcq_right
    assert [r["greedy"] for r in rows] == greedy_right
    assert [r["known"] for r in rows] == [a and b for a, b in zip(mcq_right, greedy_right)]


def test_study_splits_known_facts_by_subject():
    known = facts.candidates()
    d = facts.study(known, n_edits=10, n_locality=8, seed=3)
    assert len(d["edits"]) == 10 and len(d["locality"]) == 8
    edit_subjects = {e.subject for e in d["edits"]}
    assert len(edit_subjects) == 10
    for e in d["edits"]:
        values = facts.RELATIONS[e.relation][1]
        assert e.target_true == " " + values[e.subject]
        assert e.target_new != e.target_true and e.target_new[1:] in values.values()
        assert e.relation != facts.FORGET_RELATION and len(e.paraphrases) >= 1
    probe_subjects = {p.prompt for p in d["locality"]}
    assert not any(s in p for s in edit_subjects for p in probe_subjects)
    # unlearning: chemistry only, every known chemistry fact in the forget set and its test
    n_chem = sum(1 for f in known if f[0] == facts.FORGET_RELATION)
    assert len(d["forget_mcq"]) == n_chem
    assert len(d["forget_texts"]) == n_chem * len(facts.RELATIONS[facts.FORGET_RELATION][0])
    assert all(q.choices[q.label] in facts.RELATIONS[facts.FORGET_RELATION][1].values() for q in d["forget_mcq"])
    assert d["utility_mcq"] and not any(
        q.choices[q.label] in facts.RELATIONS[facts.FORGET_RELATION][1].values() and "chemical" in q.prompt for q in d["utility_mcq"]
    )


def test_too_few_known_facts_fail_naming_the_counts():
    known = [f for f in facts.candidates() if f[0] in ("currency", facts.FORGET_RELATION)]
    with pytest.raises(ValueError, match=r"knows 16 general facts and 24 chemistry facts"):
        facts.study(known, n_edits=16, n_locality=16)


def test_facts_source_on_a_model_that_knows_nothing(tmp_path):
    """End to end through the registry: a random tiny model knows no fact, and the
    source says so with the counts instead of building an empty study."""
    from compbench.tokenizer import train
    from conftest import make_tiny_llama

    docs = [f"{t.format(s)} {v}." for rel, (ts, tab) in facts.RELATIONS.items() for s, v in tab.items() for t in ts]
    tok = train(docs * 3, vocab_size=300)
    model_dir = tmp_path / "model"
    make_tiny_llama(vocab=len(tok), hidden=32, inter=64, positions=64).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    assert compose_data.needs_model({"source": "facts"}) and not compose_data.needs_model({"source": "world"})
    with pytest.raises(ValueError, match=r"the model knows \d+ general facts"):
        compose_data.build({"source": "facts", "edits": 4, "locality": 4, "retain": 2}, corpus_dir=tmp_path, model_dir=model_dir)

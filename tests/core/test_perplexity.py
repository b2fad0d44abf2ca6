"""Perplexity protocol against a hand computation on a 2-layer model."""

import math

import pytest
import torch

from compbench import perplexity
from conftest import make_tiny_llama


@pytest.fixture(scope="module")
def model():
    return make_tiny_llama(vocab=50, hidden=16, inter=32, layers=2, heads=2, positions=8, seed=0)


def literal_ppl(model, ids, seq_len):
    """Token by token: every window is scored independently, its first token unpredicted."""
    nll, count = 0.0, 0
    for w in range(ids.numel() // seq_len):
        window = ids[w * seq_len : (w + 1) * seq_len]
        with torch.no_grad():
            logp = torch.log_softmax(model(window[None]).logits[0].double(), -1)
        for t in range(seq_len - 1):
            nll -= float(logp[t, window[t + 1]])
            count += 1
    return math.exp(nll / count), count


def test_matches_literal_computation(model):
    ids = torch.randint(0, 50, (8 * 5 + 3,), generator=torch.Generator().manual_seed(1))
    res = perplexity.evaluate(model, ids, seq_len=8, batch_size=2)
    want, count = literal_ppl(model, ids, 8)
    assert res["windows"] == 5 and res["tokens"] == count == 35  # the remainder (3 tokens) is dropped
    assert res["perplexity"] == pytest.approx(want, rel=1e-5)


def test_max_windows_and_too_short(model):
    ids = torch.arange(40) % 50
    assert perplexity.evaluate(model, ids, seq_len=8, max_windows=2)["windows"] == 2
    with pytest.raises(ValueError, match="fewer than one window"):
        perplexity.evaluate(model, ids[:5], seq_len=8)


def test_uniform_model_has_vocab_perplexity(model):
    """A model with constant logits has perplexity exactly the vocabulary size."""

    class Const(torch.nn.Module):
        def forward(self, x):
            return type("O", (), {"logits": torch.zeros(*x.shape, 50)})()

    res = perplexity.evaluate(Const(), torch.arange(64) % 50, seq_len=16)
    assert res["perplexity"] == pytest.approx(50.0, rel=1e-6)


def test_natural_dataset_is_the_test_split_without_generated_text(tmp_path):
    for source, text in {"wiki": "w1\n\nw2", "lee": "l1", "tasks": "t1", "knowledge": "k1"}.items():
        (tmp_path / source).mkdir()
        (tmp_path / source / "test.txt").write_text(text)
    spec = {"sources": ["wiki", "tasks", "lee", "knowledge"]}
    assert perplexity.DATASETS.get("natural")(spec, tmp_path) == "w1\n\nw2\n\nl1"
    assert perplexity.DATASETS.get("tiny")(spec, tmp_path) == "w1\n\nw2\n\nt1\n\nl1\n\nk1"
    with pytest.raises(ValueError, match=r"'natural' needs a natural-text corpus source; corpus.sources=\['tasks'\]"):
        perplexity.DATASETS.get("natural")({"sources": ["tasks"]}, tmp_path)


def test_rule_params_give_every_corpus_dataset_its_sources(tmp_path):
    """The perplexity rule's params come from lines.corpus_sources: each corpus data set
    gets the config's sources and reads its text (a cold SmolLM2 run once failed
    because `natural` got no sources), hub data sets get none."""
    from compbench import lines

    for source, text in {"wiki": "w1", "lee": "l1", "knowledge": "k1"}.items():
        (tmp_path / source).mkdir()
        (tmp_path / source / "test.txt").write_text(text)
    config = {"corpus": {"sources": ["wiki", "lee", "knowledge"]}}
    assert set(lines.CORPUS_DATASETS) <= set(perplexity.DATASETS.names())
    for ds in lines.CORPUS_DATASETS:
        assert perplexity.DATASETS.get(ds)({"sources": lines.corpus_sources(config, ds)}, tmp_path).startswith("w1")
    assert lines.corpus_sources(config, "wikitext2") == [] and lines.corpus_sources(config, "c4") == []

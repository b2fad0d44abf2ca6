"""Corpus cleaning/splitting and tokenizer training: determinism and layout."""

import pytest

from compbench import corpus, tokenizer

DOCS = [f"document number {i} " + "word " * (i % 7 + 3) for i in range(200)]


def test_split_is_deterministic_and_disjoint():
    spec = corpus.SplitSpec(validation=0.1, test=0.05, seed=3)
    a, b = corpus.split_documents(DOCS, spec), corpus.split_documents(DOCS, spec)
    assert a == b
    sets = {k: set(v) for k, v in a.items()}
    assert not (sets["train"] & sets["test"]) and not (sets["train"] & sets["validation"]) and not (sets["test"] & sets["validation"])
    assert sum(len(v) for v in a.values()) == len(DOCS)
    assert (len(a["test"]), len(a["validation"])) == (10, 20)
    other = corpus.split_documents(DOCS, corpus.SplitSpec(validation=0.1, test=0.05, seed=4))
    assert other["test"] != a["test"]


@pytest.mark.parametrize("val,test", [(0.0, 0.1), (0.6, 0.5), (0.1, 1.2)])
def test_split_rejects_bad_fractions(val, test):
    with pytest.raises(ValueError, match="split fractions"):
        corpus.split_documents(DOCS, corpus.SplitSpec(validation=val, test=test, seed=0))


def test_wiki_markup_is_stripped():
    src = (
        "'''Anarchism''' is a [[political philosophy]] that rejects [[Hierarchy|hierarchies]] deemed unjust"
        "<ref>Some citation</ref>{{cite book|title=x}} and [http://example.org advocates] their replacement.\n"
        "[[Category:Anarchism]]\n| table row\n== Heading ==\n"
    )
    assert corpus.strip_wiki_markup(src) == (
        "Anarchism is a political philosophy that rejects hierarchies deemed unjust and advocates their replacement."
    )


def test_unknown_source_names_allowed():
    with pytest.raises(KeyError, match="unknown corpus source 'nope'; allowed: knowledge, lee, tasks, wiki"):
        corpus.SOURCES.get("nope")


def test_tokenizer_deterministic_and_round_trips():
    texts = ["The quick brown fox jumps over the lazy dog. " * 3 + str(i) for i in range(50)]
    t1, t2 = tokenizer.train(texts, vocab_size=300), tokenizer.train(texts, vocab_size=300)
    assert t1.get_vocab() == t2.get_vocab()
    ids = tokenizer.encode_stream(t1, "The lazy dog.\n\nA fox!")
    assert int(ids[0]) == t1.bos_token_id
    assert t1.decode(ids[1:]) == "The lazy dog.\n\nA fox!"

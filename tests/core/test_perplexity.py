"""Perplexity protocol against a hand computation on a 2-layer model."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from compbench import perplexity, perplexity_batch
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


def test_window_sums_reproduce_the_perplexity_exactly(model, tmp_path):
    """exp(fsum(window NLL) / sum(window tokens)) is the reported perplexity bit for bit, also
    after the windows table's CSV round trip; each window's sum is its literal token NLL."""
    ids = torch.randint(0, 50, (8 * 7 + 2,), generator=torch.Generator().manual_seed(2))
    res = perplexity.evaluate(model, ids, seq_len=8, batch_size=3)
    assert len(res["window_nll"]) == len(res["window_tokens"]) == res["windows"] == 7
    assert res["window_tokens"] == [7] * 7 and sum(res["window_tokens"]) == res["tokens"]
    assert math.exp(math.fsum(res["window_nll"]) / sum(res["window_tokens"])) == res["perplexity"]
    for w in (0, 6):  # a window's sum is its own tokens' NLL, in any batch
        alone = perplexity.evaluate(model, ids[w * 8 : (w + 1) * 8], seq_len=8)
        assert alone["window_nll"][0] == pytest.approx(res["window_nll"][w], rel=1e-6)
        assert alone["perplexity"] == pytest.approx(literal_ppl(model, ids[w * 8 : (w + 1) * 8], 8)[0], rel=1e-5)
    rows = perplexity.window_rows("m", "v", "d", {"nll": res["window_nll"], "tokens": res["window_tokens"]})
    pd.DataFrame(rows, columns=perplexity.WINDOW_COLUMNS).to_csv(tmp_path / "w.csv", index=False)
    back = pd.read_csv(tmp_path / "w.csv")  # pandas 3 reads floats back exactly
    assert list(back["window"]) == list(range(7))
    assert math.exp(math.fsum(back["nll"]) / back["tokens"].sum()) == res["perplexity"]
    with pytest.raises(ValueError, match="2 window NLL sums but 1 token counts"):
        perplexity.window_rows("m", "v", "d", {"nll": [1.0, 2.0], "tokens": [7]})


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


# ---------------------------------------------------------------- rule perplexity: batches and the result cache
TEXT = "\n\n".join(
    f"the {a} cat sat on the {b} mat and saw {c} birds" for a in ("red", "big", "old") for b in ("blue", "flat") for c in range(6)
)


@pytest.fixture()
def world(tmp_path):
    """A base model directory (with its tokenizer and provenance record), two masked
    variants of it and a one-source corpus test split, laid out as a run lays them out."""
    from compbench import tokenizer
    from compbench.artifacts import atomic_path, write_text
    from compbench.prune import masked

    tok = tokenizer.train([TEXT], vocab_size=300)
    base = tmp_path / "models" / "base"
    with atomic_path(base) as tmp:
        make_tiny_llama(vocab=len(tok), positions=16, seed=0).save_pretrained(tmp)
        tok.save_pretrained(str(tmp))
    write_text(tmp_path / "corpus" / "lee" / "test.txt", TEXT)
    model = make_tiny_llama(vocab=len(tok), positions=16, seed=0)
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "layers" in n]
    variants = {"dense": str(base)}
    for i, name in enumerate(("m-a", "m-b")):
        g = torch.Generator().manual_seed(i)
        masks = {n: torch.rand(dict(model.named_modules())[n].weight.shape, generator=g) > 0.5 for n in names}
        masked.save(tmp_path / "variants" / name, base, masks, {}, {"method": "test"})
        variants[name] = str(tmp_path / "variants" / name)
    settings = {"dataset": "tiny", "spec": {"dtype": "float32"}, "evaluation": {"batch_size": 2}, "sources": ["lee"]}
    return tmp_path, variants, settings


def batch(world, cache=None, code=(), members=None, **kw):
    root, variants, s = world
    args = {**s, **kw}
    return perplexity_batch.evaluate_batch(
        "m", members or variants, args["dataset"], args["spec"], args["evaluation"], args["sources"], root / "corpus", "cpu",
        cache=cache, text_files=[root / "corpus" / "lee" / "test.txt"], code_files=code,
    )  # fmt: skip


def values(result):
    rows, _ = result
    return {(r["variant"], r["metric"]): (r["value"], r["windows"], r["tokens"]) for r in rows}


def test_a_batch_gives_each_variant_the_numbers_of_its_own_evaluation(world):
    """Batched (one process, token ids shared, variants one after the other) == one
    variant at a time, fresh, as the per-variant job computed it: exactly equal."""
    root, variants, s = world
    rows, windows = batch(world)
    together = values((rows, windows))
    for name, path in variants.items():
        alone, alone_windows = perplexity_batch.variant_rows(path, "tiny", s["spec"], s["evaluation"], s["sources"], root / "corpus", "cpu")
        for r in alone:
            assert together[(name, r["metric"])] == (r["value"], r["windows"], r["tokens"])
        mine = [w for w in windows if w["variant"] == name]
        assert [w["nll"] for w in mine] == alone_windows["nll"] and [w["tokens"] for w in mine] == alone_windows["tokens"]
        assert len(mine) == together[(name, "perplexity")][1] and {w["dataset"] for w in mine} == {"tiny"}
        ppl = together[(name, "perplexity")][0]
        assert math.exp(math.fsum(w["nll"] for w in mine) / sum(w["tokens"] for w in mine)) == ppl  # exactly
    assert together[("m-a", "perplexity")][0] != together[("dense", "perplexity")][0]  # the masks matter
    assert together[("dense", "perplexity")][1] >= 1


def test_the_cache_recomputes_exactly_the_changed_variants(world, monkeypatch):
    from compbench import tokenizer
    from compbench.prune import masked
    from compbench.resultcache import ResultCache

    root, variants, s = world
    evaluated = []
    real = perplexity_batch.variant_rows
    monkeypatch.setattr(perplexity_batch, "variant_rows", lambda path, *a, **k: evaluated.append(Path(path).name) or real(path, *a, **k))
    cache = ResultCache(root / "cache")
    code = root / "code.py"
    code.write_text("x = 1\n")
    first = batch(world, cache, [code])
    assert evaluated == ["base", "m-a", "m-b"]
    evaluated.clear()
    again = batch(world, cache, [code])
    assert evaluated == [] and again == first  # every number read back exactly, timings and windows included
    assert [list(r) for r in again[0]] == [list(r) for r in first[0]]  # and the columns in their order: the same table bytes
    for i in (0, 1):  # the perplexity table and the windows table
        assert pd.DataFrame(again[i]).to_csv(index=False) == pd.DataFrame(first[i]).to_csv(index=False)
    # m-b re-made with other masks (its content changes): only m-b is evaluated again
    model = make_tiny_llama(vocab=len(tokenizer.load(variants["dense"])), positions=16)
    masks = {
        n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "layers" in n
    }
    masked.save(root / "variants" / "m-b", variants["dense"], masks, {}, {"method": "test"})
    third = batch(world, cache, [code])
    assert evaluated == ["m-b"]
    assert values(third)[("m-b", "perplexity")] == values(batch(world, members={"dense": variants["dense"]}))[("dense", "perplexity")]
    evaluated.clear()
    # m-b re-made identical (a rerun of its job): its content is the same, nothing is evaluated
    masked.save(root / "variants" / "m-b", variants["dense"], masks, {}, {"method": "test"})
    assert batch(world, cache, [code]) == third and evaluated == []
    # a settings change or a code change is a change for every variant
    batch(world, cache, [code], evaluation={"batch_size": 3})
    assert evaluated == ["base", "m-a", "m-b"]
    evaluated.clear()
    code.write_text("x = 2\n")
    batch(world, cache, [code])
    assert evaluated == ["base", "m-a", "m-b"]
    evaluated.clear()
    # an entry without windows (or with damaged windows) is a miss: a cached row must restore its windows
    fresh = ResultCache(root / "cache-windows")
    current = batch(world, fresh, [code])
    evaluated.clear()
    entries = sorted((root / "cache-windows").glob("*.json"))
    assert len(entries) == 3
    for entry, change in zip(entries[:2], ("drop", "damage")):
        e = json.loads(entry.read_text())
        if change == "drop":
            del e["extra"], e["extra_sha256"]
        else:
            e["extra"]["nll"][0] += 1
        entry.write_text(json.dumps(e))
    fourth = batch(world, fresh, [code])
    assert len(evaluated) == 2 and fourth[1] == current[1]  # those two evaluated again, the same windows
    assert batch(world, fresh, [code]) == fourth and len(evaluated) == 2  # rewritten with their windows: read back
    evaluated.clear()
    # a damaged entry is a miss, never an error; reads can be switched off
    entries = sorted((root / "cache").glob("*.json"))
    for entry in entries[1:]:  # a value changed behind the entry's checksum
        e = json.loads(entry.read_text())
        e["rows"][0]["value"] += 1
        entry.write_text(json.dumps(e))
    entries[0].write_text("{not json")
    batch(world, cache, [code])
    assert evaluated == ["base", "m-a", "m-b"]
    evaluated.clear()
    monkeypatch.setenv("COMPBENCH_RESULT_CACHE", "off")
    batch(world, ResultCache(root / "cache"), [code])
    assert evaluated == ["base", "m-a", "m-b"]


def test_eval_dtype_loads_the_evaluated_variants_in_it_and_only_them(world, monkeypatch):
    """``models.<name>.eval_dtype`` (bf16: 1.75x faster on SmolLM2 here) is the dtype the
    perplexity jobs load each variant in; without it, ``dtype``. The numbers stay close
    to the float32 evaluation (tiny random model: within 2 %)."""
    from compbench import models, variants

    root, members, s = world
    loaded = []
    real = variants.load
    monkeypatch.setattr(variants, "load", lambda path, **k: loaded.append(k.get("dtype")) or real(path, **k))
    fp32 = values(batch(world))
    assert set(loaded) == {torch.float32}
    loaded.clear()
    bf16 = values(batch(world, spec={"dtype": "float32", "eval_dtype": "bfloat16"}))
    assert loaded == [torch.bfloat16] * len(members)
    for key, (v, n_windows, n_tokens) in fp32.items():
        assert bf16[key][1:] == (n_windows, n_tokens)
        assert bf16[key][0] == pytest.approx(v, rel=0.02), key
    assert models.eval_dtype({"dtype": "float16"}) == "float16" and models.eval_dtype({}) == "float32"

"""Calibration-data study and lm-eval: generated tasks (held out for real),
calibration sources x formats (documented layouts, exact token counts,
determinism), lm-eval log-likelihoods equal to a direct forward pass,
materialised variants, the study grid and its tables."""

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from compbench import calibration_data, corpus, tasks
from compbench.calibration_catalogue import CATALOGUE, check, parse_format, parse_name, set_name
from compbench.calibration_study import grid as study_grid
from compbench.calibration_study import plots as calibration_plots
from compbench.calibration_study import study as calibration_study
from compbench.config import ConfigError
from compbench.config import check as check_config


@pytest.fixture(scope="module")
def tok():
    from compbench import tokenizer

    texts = [it.text(cot=c) for t in tasks.TASKS for it in tasks.eval_items(t, 60, 1) for c in (False, True)]
    return tokenizer.train(texts + ["the quick brown fox jumps over the lazy dog " * 5], vocab_size=400)


# ------------------------------------------------------------ generated tasks


@pytest.mark.parametrize("task", ["arith", "facts", "continuation"])
def test_heldout_items_never_in_training(task):
    held = tasks.eval_items(task, 50, 0)
    keys = {it.key for it in held}
    assert len(keys) == 50
    stream = tasks.train_items(task, 50, 0, "x")
    train = [next(stream) for _ in range(3000)]
    assert not keys & {it.key for it in train}
    texts = {it.text() for it in train}
    assert not any(it.text() in texts for it in held)
    # the corpus source is built from the same training stream
    docs = tasks.corpus_documents(0.2, 20_000, 50, 0)
    joined = "\n\n".join(docs)
    for it in held:
        assert it.text() + "\n" not in joined + "\n"


def test_corpus_share_and_determinism():
    docs = tasks.corpus_documents(0.1, 90_000, 20, 0)
    chars = sum(len(d) + 2 for d in docs)
    assert 10_000 <= chars < 10_000 + 400  # share / (1 - share) of the other text, to one item
    assert docs == tasks.corpus_documents(0.1, 90_000, 20, 0)
    with pytest.raises(ValueError, match="share"):
        tasks.corpus_documents(1.5, 1000, 20, 0)


def test_items_answers_are_right():
    for it in tasks.eval_items("arith", 30, 0):
        a, b = map(int, re.findall(r"\d+", it.question))
        assert it.answer == str(a + b) and len(set(it.choices)) == 4
        assert it.rationale.endswith(f"is {a + b}")
    for it in tasks.eval_items("facts", 30, 0):
        name = re.search(r"(\w+) (?:live|have|like)\?$", it.question).group(1)
        stmt = {"city": "lives in", "animal": "has a", "colour": "likes the colour"}[it.key[0]]
        assert re.search(rf"{name} {stmt} {it.answer}\.", it.question)
        assert len(set(it.choices)) == 4
    for it in tasks.eval_items("continuation", 30, 0):
        situation = next(s for s in tasks.SITUATIONS if s[0] in it.question)
        assert it.answer == situation[1] + "." and it.style == "continuation"
    with pytest.raises(ValueError, match="more than half"):
        tasks.heldout_keys("continuation", 400, 0)


def test_tasks_corpus_source(tmp_path):
    (tmp_path / "cache").mkdir()
    fake = {"fake": lambda cache: ["word " * 100] * 40}
    corpus.SOURCES._items.update(fake)
    try:
        stats = corpus.build(
            ["tasks", "fake"],
            corpus.SplitSpec(0.1, 0.1, 0),
            tmp_path / "cache",
            tmp_path / "c",
            options={"tasks": {"share": 0.2, "eval_items": 10}},
        )
    finally:
        del corpus.SOURCES._items["fake"]
    task_chars = sum(v["chars"] for v in stats["tasks"].values())
    other = sum(v["chars"] for v in stats["fake"].values())
    assert 0.19 < task_chars / (task_chars + other) < 0.23
    assert "Question:" in (tmp_path / "c/tasks/train.txt").read_text()


# ------------------------------------------------------- calibration formats


def decoded(tok, row):
    pad = tok.pad_token_id
    return tok.decode([int(t) for t in row if int(t) != pad], skip_special_tokens=True)


@pytest.mark.parametrize("source", ["arith", "facts", "continuation"])
@pytest.mark.parametrize("fmt", ["zero", "single", "concat", "cot", "icl3"])
def test_formats_shape_and_determinism(tok, source, fmt):
    ids = calibration_data.token_set(source, tok, 3, 48, seed=0, fmt=fmt)
    assert ids.shape == (3, 48) and ids.dtype == torch.long  # exactly n x seq_len tokens
    assert torch.equal(ids, calibration_data.token_set(source, tok, 3, 48, seed=0, fmt=fmt))
    assert not torch.equal(ids, calibration_data.token_set(source, tok, 3, 48, seed=1, fmt=fmt))


def test_layouts(tok):
    from compbench.calibration_data import EXAMPLES

    first = [next(EXAMPLES.get("arith")(seed=5)) for _ in range(1)][0]
    # single: one pair, left-padded, BOS first
    ids = calibration_data.token_set("arith", tok, 2, 64, seed=5, fmt="single")
    row = ids[0].tolist()
    n_pad = next(i for i, t in enumerate(row) if t != tok.pad_token_id)
    assert n_pad > 0 and row[n_pad] == tok.bos_token_id
    assert decoded(tok, ids[0]) == f"Question: {first.question}\nAnswer: {first.answer}"
    # zero: the prompt only
    assert decoded(tok, calibration_data.token_set("arith", tok, 1, 64, seed=5, fmt="zero")[0]) == f"Question: {first.question}\nAnswer:"
    # icl<k>: exactly k pairs
    for k in (2, 4):
        text = decoded(tok, calibration_data.token_set("arith", tok, 2, 256, seed=5, fmt=f"icl{k}")[1])
        assert text.count("Question:") == k and text.count("Answer:") == k
    # cot: the answers are "{rationale}. So the answer is {label}."
    text = decoded(tok, calibration_data.token_set("arith", tok, 1, 512, seed=5, fmt="cot")[0])
    pairs = re.findall(r"(\d+) plus (\d+) is (\d+), and (\d+) plus (\d+) is (\d+)\. So the answer is (\d+)\.", text)
    assert len(pairs) >= 3
    for u, b, s1, tens, s2, total, label in pairs:
        assert int(u) + int(b) == int(s1) and int(tens) + int(s2) == int(total) == int(label)
    # concat: pairs past the window, no padding
    ids = calibration_data.token_set("facts", tok, 4, 128, seed=0, fmt="concat")
    assert not (ids == tok.pad_token_id).any()
    assert decoded(tok, ids[0]).count("Answer:") >= 2


def test_single_truncates_to_seq_len(tok):
    ids = calibration_data.token_set("facts", tok, 2, 12, seed=0, fmt="single")
    assert ids.shape == (2, 12) and ids[0, 0] == tok.bos_token_id and not (ids == tok.pad_token_id).any()


def test_random_and_tiny_sources(tok, tmp_path):
    ids = calibration_data.token_set("random", tok, 4, 32, seed=0)
    assert ids.shape == (4, 32) and torch.equal(ids, calibration_data.token_set("random", tok, 4, 32, seed=0))
    assert re.fullmatch(r"[a-z ]+", decoded(tok, ids[0]))
    for src, text in {
        "lee": "plain news text about the weather. " * 200,
        "tasks": "Question: What is 1 plus 2?\nAnswer: 3\n\n" * 200,
    }.items():
        (tmp_path / src).mkdir()
        (tmp_path / src / "train.txt").write_text(text)
    ids = calibration_data.token_set("tiny", tok, 4, 32, seed=0, corpus_dir=tmp_path, sources=["lee", "tasks"])
    assert all("Question" not in decoded(tok, r) for r in ids)  # generated items are not pre-training text


def test_bad_sources_and_formats(tok):
    with pytest.raises(ValueError, match="allowed: raw, zero"):
        parse_format("fewshot")
    with pytest.raises(ValueError, match="k ≥ 1"):
        parse_format("icl0")
    with pytest.raises(ValueError, match="needs rationales"):
        check("commonsense_qa", "cot")
    with pytest.raises(ValueError, match="only format is 'raw'"):
        check("c4", "concat")
    with pytest.raises(ValueError, match="downstream"):
        check("gsm8k", "raw")
    with pytest.raises(ValueError, match="format must be 'raw'"):
        calibration_data.token_set("tiny", tok, 2, 16, 0, fmt="cot")
    with pytest.raises(KeyError, match="allowed: .*arith"):
        calibration_data.token_set("nope", tok, 2, 16, 0)
    assert parse_name(set_name("gsm8k", "icl5")) == ("gsm8k", "icl5") and parse_name("tiny") == ("tiny", "raw")


@pytest.mark.parametrize("source,hf_id", [("gsm8k", "openai/gsm8k"), ("pile", "monology/pile-uncopyrighted")])
def test_hub_sources_fail_clearly_offline(tok, source, hf_id, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    fmt = "raw" if CATALOGUE[source][0] == "pretraining" else "concat"
    with pytest.raises(RuntimeError, match=re.escape(hf_id)):
        calibration_data.token_set(source, tok, 2, 16, 0, fmt=fmt)


# --------------------------------------------------------------------- lm-eval


@pytest.fixture(scope="module")
def two_layer(tok, tmp_path_factory):
    from compbench import models

    d = tmp_path_factory.mktemp("m2")
    cfg = models.tiny_config(dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2, seq_len=128), len(tok), tok)
    torch.manual_seed(0)
    from transformers import LlamaForCausalLM

    m = LlamaForCausalLM(cfg)
    m.save_pretrained(str(d / "model"))
    tok.save_pretrained(str(d / "model"))
    return d


def test_lm_eval_loglikelihood_equals_forward_pass(two_layer, tok, monkeypatch):
    from compbench import zeroshot
    from compbench.models import load

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(two_layer / "hf"))
    items = tasks.eval_items("arith", 2, 0)
    tasks.write_eval_jsonl(two_layer / "items/arith.jsonl", items)
    zeroshot.write_task("arith", two_layer / "items/arith.jsonl", two_layer / "yaml")
    res = zeroshot.evaluate(two_layer / "model", ["cb_arith"], two_layer / "yaml", batch_size=4, log_samples=True)
    sample = next(s for s in res["samples"]["cb_arith"] if s["doc_id"] == 0)
    model = load(two_layer / "model")
    for (context, continuation), resp in zip(sample["arguments"], sample["resps"]):
        assert context == items[0].prompt
        whole = tok(context + continuation).input_ids
        ctx = tok(context).input_ids
        cont = whole[len(ctx) :]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), -1)
        direct = sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(cont))
        assert resp[0][0] == pytest.approx(direct, abs=1e-4)
    assert [a[1] for a in sample["arguments"]] == [" " + c for c in items[0].choices]
    acc = res["results"]["cb_arith"]["acc,none"]
    assert 0 <= acc <= 1
    rows = zeroshot.tidy(res, model="m", variant="dense")
    assert {r["metric"] for r in rows} == {"acc", "acc_norm"}
    # per-item correctness (the verdicts' bootstrap): its mean is lm-eval's accuracy, item 0 is doc 0
    from compbench import stats

    items = {r["metric"]: r for r in zeroshot.items(res, model="m", variant="dense")}
    assert (
        set(items) == {"acc", "acc_norm"} and items["acc"]["dataset"] == "cb_arith" and items["acc"]["n"] == len(res["samples"]["cb_arith"])
    )
    for metric, r in items.items():
        ok = stats.unbits(r["correct"])
        assert ok.size == r["n"] and ok.mean() == pytest.approx(res["results"]["cb_arith"][f"{metric},none"])
        assert bool(ok[0]) == bool(sample[metric])


def test_materialised_masked_variant(two_layer):
    from compbench import variants, zeroshot
    from compbench.models import load
    from compbench.prune import masked

    base = two_layer / "model"
    before = {p.name: p.read_bytes() for p in base.iterdir() if p.is_file()}
    model = load(base)
    masks = {n: torch.rand_like(m.weight) > 0.5 for n, m in model.named_modules() if n.endswith("q_proj")}
    masked.save(two_layer / "variant", base, masks, {}, {"method": "test"})
    with zeroshot.materialised(two_layer / "variant", tmp_root=two_layer) as d:
        assert d != base and (d / "config.json").exists() and (d / "tokenizer.json").exists()
        a = load(d)
        b, _ = variants.load(two_layer / "variant")
        for (n1, p1), (n2, p2) in zip(a.state_dict().items(), b.state_dict().items()):
            assert n1 == n2 and torch.equal(p1, p2)
        q = a.model.layers[0].self_attn.q_proj.weight
        assert torch.equal(q == 0, ~masks["model.layers.0.self_attn.q_proj"])
    assert not d.exists()  # removed afterwards
    assert {p.name: p.read_bytes() for p in base.iterdir() if p.is_file()} == before  # base untouched
    with zeroshot.materialised(base) as d:
        assert d == base  # a plain model directory is used as it is


def test_materialised_lowrank_and_quant_variants_load_as_the_same_model(two_layer):
    """A low-rank variant's factor pairs are saved as the equal plain linears (saved as
    they are, from_pretrained initialised those weights at random), a quant variant as
    its dequantised weights: lm-eval scores the variant, not a damaged copy."""
    from compbench import variants, zeroshot
    from compbench.lowrank import compress as lowrank
    from compbench.models import load
    from compbench.quant import variant as quant
    from compbench.quant.methods import quantise_model

    base = two_layer / "model"
    lowrank.save(two_layer / "lr", base, lowrank.compress(load(base), {"model.layers.0.mlp.down_proj": 3}), {"allocation": "uniform"})
    quant.save(two_layer / "q", base, quantise_model(load(base), "rtn", 4, 16)[0], {"method": "rtn"})
    x = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(0))
    for name in ("lr", "q"):
        with zeroshot.materialised(two_layer / name, tmp_root=two_layer) as d:
            with torch.no_grad():
                torch.testing.assert_close(load(d)(x).logits, variants.load(two_layer / name)[0](x).logits, rtol=1e-5, atol=1e-5)
    model = variants.load(two_layer / "lr")[0]
    model.model.layers[0].mlp.down_proj = torch.nn.Identity()  # no linear map of the right shape: refused, not saved wrong
    with pytest.raises(RuntimeError, match="missing"):
        zeroshot.as_plain(model)


def test_lm_eval_batch_equals_one_at_a_time_and_reads_unchanged_variants_back(two_layer, monkeypatch):
    """Rule lm_eval evaluates a batch of variants in one job (compbench.zeroshot.evaluate_batch):
    its rows are those of each variant evaluated alone; a second run reads every variant back
    from the result cache (same rows); after one variant's masks change only that one is
    evaluated again, and its accuracy is the new variant's."""
    from compbench import zeroshot
    from compbench.models import load
    from compbench.prune import masked
    from compbench.resultcache import ResultCache

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(two_layer / "hf"))
    d = two_layer / "batch"
    tasks.write_eval_jsonl(d / "items/arith.jsonl", tasks.eval_items("arith", 8, 0))
    zeroshot.write_task("arith", d / "items/arith.jsonl", d / "yaml")
    base = two_layer / "model"
    model = load(base)

    def save_masked(seed):
        g = torch.Generator().manual_seed(seed)
        masks = {n: torch.rand(m.weight.shape, generator=g) > 0.7 for n, m in model.named_modules() if n.endswith(("up_proj", "o_proj"))}
        masked.save(d / "pruned", base, masks, {}, {"method": "test", "seed": seed})

    save_masked(0)
    members = {"dense": str(base), "pruned": str(d / "pruned")}
    lm = {"tasks": ["cb_arith"], "batch_size": 4}
    calls = []
    alone = zeroshot.variant_rows

    def counted(path, *a, **k):
        calls.append(Path(path).name)
        return alone(path, *a, **k)

    monkeypatch.setattr(zeroshot, "variant_rows", counted)
    cache = ResultCache(d / "cache")
    code = [Path(zeroshot.__file__)]

    def run():
        calls.clear()
        return zeroshot.evaluate_batch("m", members, lm, {}, d / "yaml", "cpu", cache=cache, code_files=code, tmp_root=d)

    def values(rows):
        return {(r["variant"], r["dataset"], r["metric"]): r["value"] for r in rows}

    rows, items = run()
    assert calls == ["model", "pruned"] and {i["variant"] for i in items} == {"dense", "pruned"}
    again, again_items = run()
    assert calls == [] and values(again) == values(rows) and again_items == items
    save_masked(1)
    changed, changed_items = run()
    assert calls == ["pruned"]
    assert {k: v for k, v in values(changed).items() if k[0] == "dense"} == {k: v for k, v in values(rows).items() if k[0] == "dense"}
    fresh, fresh_items = alone(d / "pruned", lm, {}, d / "yaml", "cpu", d)  # the new variant alone, as a one-variant job did it
    assert {k[1:]: v for k, v in values(changed).items() if k[0] == "pruned"} == {(r["dataset"], r["metric"]): r["value"] for r in fresh}
    assert [i["correct"] for i in changed_items if i["variant"] == "pruned"] == [i["correct"] for i in fresh_items]


# --------------------------------------------------------------- study grid


STUDY = {
    "sources": ["tiny", "arith", "commonsense_qa"],
    "formats": ["concat", "cot"],
    "methods": ["wanda", "sparsegpt"],
    "sparsities": [0.5],
    "n_samples": [8],
    "seq_len": [32],
    "seeds": [0],
    "sweeps": [{"sources": ["arith"], "formats": ["icl5"], "methods": ["wanda"], "n_samples": [8, 16]}],
}


def test_grid_cells():
    cs = study_grid.cells(STUDY)
    sets = {(c["set"], c["method"], c["n_samples"]) for c in cs}
    # tiny: raw; arith: concat + cot; commonsense_qa: concat only (no rationales); sweep adds arith-icl5 x {8, 16}
    main = {(s, m, 8) for s in ["tiny", "arith-concat", "arith-cot", "commonsense_qa-concat"] for m in ["wanda", "sparsegpt"]}
    assert sets == main | {("arith-icl5", "wanda", 8), ("arith-icl5", "wanda", 16)}
    assert len(cs) == len(sets)
    for c in cs:
        p = study_grid.parse_variant(c["variant"])
        assert p["set"] == c["set"] and p["method"] == c["method"] and float(p["sparsity"]) == c["sparsity"]
        assert p["calib"] == c["calib"]


def test_bad_study_config():
    base = {"models": {"t": {"source": "hf", "id": "x/y", "size": "s"}}, "resources": {"s": {}}, "evaluation": {}}
    with pytest.raises(ConfigError, match="unknown calibration source 'nope'; allowed: tiny"):
        check_config({**base, "calibration_study": {**STUDY, "sources": ["nope"]}})
    with pytest.raises(ConfigError, match="'raw' is implied"):
        check_config({**base, "calibration_study": {**STUDY, "formats": ["raw"]}})
    with pytest.raises(ConfigError, match="needs the `corpus` section"):
        check_config({**base, "calibration_study": STUDY})
    with pytest.raises(ConfigError, match="unknown generated task 'cb_x'"):
        check_config({**base, "corpus": {}, "calibration_study": {**STUDY, "lm_eval": {"tasks": ["cb_x"]}}})
    with pytest.raises(ConfigError, match="grid is empty"):
        check_config(
            {**base, "corpus": {}, "calibration_study": {**STUDY, "sources": ["commonsense_qa"], "formats": ["cot"], "sweeps": []}}
        )


def test_study_table_and_heatmap(tmp_path):
    v = "calib-arith-cot_8x32_s0-wanda-0.5"
    zs = pd.DataFrame(
        [
            {"model": "t", "variant": "dense", "dataset": "cb_arith", "metric": "acc", "value": 0.6, "wall_s": 3.0},
            {"model": "t", "variant": v, "dataset": "cb_arith", "metric": "acc", "value": 0.45, "wall_s": 4.0},
            {"model": "t", "variant": v, "dataset": "cb_arith", "metric": "acc_norm", "value": 0.5, "wall_s": 4.0},
        ]
    )
    ppl = pd.DataFrame(
        [
            {"model": "t", "variant": "dense", "dataset": "tiny", "metric": "perplexity", "value": 30.0, "wall_s": 1.0},
            {"model": "t", "variant": v, "dataset": "tiny", "metric": "perplexity", "value": 45.0, "wall_s": 1.0},
        ]
    )
    rec = pd.DataFrame([{"model": "t", "variant": v, "sparsity": 0.5, "wall_s": 2.0}])
    t = calibration_study.table(rec, ppl, zs)
    row = t[(t.variant == v) & (t.metric == "acc")].iloc[0]
    assert row.delta == pytest.approx(-0.15) and row.source == "arith" and row.format == "cot" and row.category == "arithmetic"
    assert row.eval_s == 4.0 and row.prune_s == 2.0
    paper = calibration_study.paper_table(t)
    assert list(paper.method) == ["dense", "wanda"]
    assert paper[paper.method == "wanda"].cb_arith.iloc[0] == pytest.approx(45.0)
    assert paper[paper.method == "wanda"].ppl_tiny.iloc[0] == pytest.approx(45.0)
    calibration_plots.heatmap(t, tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 1000


# ------------------------------------------------------------- end to end


@pytest.mark.workflow
def test_study_end_to_end(smoke):
    zs = pd.read_csv(smoke.results("tables", "zeroshot.csv"))
    assert {"dense", "calib-arith-cot_4x64_s0-wanda-0.5"} <= set(zs.variant)
    acc = zs[zs.metric == "acc"]
    assert set(acc.dataset) == {"cb_arith", "cb_continuation"}
    assert (acc.chance == 0.25).all() and acc.value.between(0, 1).all() and (acc.wall_s > 0).all()
    t = pd.read_csv(smoke.results("tables", "calibration-tiny.csv"))
    assert {"perplexity", "acc"} <= set(t.metric) and t.delta.notna().all()
    assert smoke.results("figures", "calibration-heatmap-tiny.png").stat().st_size > 1000
    assert smoke.results("benchmarks", "lm_eval", "tiny", "dense.tsv").exists()
    items = [l for l in smoke.results("lm_eval", "tasks", "arith.jsonl").read_text().splitlines() if l]
    train = "\n\n".join(smoke.results("corpus", "tasks", s + ".txt").read_text() for s in ("train", "validation", "test"))
    assert len(items) == 20
    import json

    for line in items:
        it = json.loads(line)
        assert f"{it['prompt']} {it['answer']}\n" not in train + "\n"


def test_items_keep_0_1_metrics_in_doc_order():
    from compbench import stats, zeroshot

    res = {
        "samples": {
            "t": [
                {"doc_id": 2, "acc": 1.0, "acc_norm": 0.0, "exact_match": 0.5},
                {"doc_id": 0, "acc": 0.0, "acc_norm": 1.0, "exact_match": 1.0},
                {"doc_id": 1, "acc": 1.0, "acc_norm": 1.0, "exact_match": 0.0},
            ]
        }
    }
    rows = zeroshot.items(res, model="m", variant="v")
    assert [(r["dataset"], r["metric"], r["n"], r["correct"]) for r in rows] == [("t", "acc", 3, "b011"), ("t", "acc_norm", 3, "b110")]
    assert rows[0]["model"] == "m" and list(stats.unbits(rows[0]["correct"])) == [False, True, True]
    assert zeroshot.items({"results": {}}) == []  # no logged samples: no items

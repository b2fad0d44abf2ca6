"""The pure helpers of the peer benchmark (workflow/benchmarks/peers.py, a script, not a test):
the FLOP count of a LLaMA forward against a hand count and torch's own counter, the CSV
schema, the speed-up and goal of each task, the alternating timing order. Nothing here is timed."""

import csv
import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT, make_gqa_llama

SCRIPT = ROOT / "workflow" / "benchmarks" / "peers.py"


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("peers", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_script_imports_without_torch_or_numpy():
    code = f"import runpy, sys; runpy.run_path({str(SCRIPT)!r}); print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


GQA = dict(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def test_forward_flops_equal_a_hand_count(peers):
    # per token and block: q 64x64, k and v 64x32 (2 kv heads of 16), o 64x64, gate/up/down 64x128
    linears = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128  # 36864 multiply-adds
    attention = 2 * 64 * 32  # QKᵀ and AV over 32 positions, 4 heads of 16
    head = 64 * 96
    assert linears == 36864
    want = 2 * 3 * 32 * (2 * (linears + attention) + head)
    assert want == 16_908_288
    assert peers.llama_forward_flops(GQA, batch=3, seq=32) == want
    assert peers.llama_forward_flops(GQA, batch=3, seq=32, lm_head=False) == want - 2 * 3 * 32 * head
    assert peers.llama_training_flops(GQA, 3, 32) == 3 * want
    assert peers.llama_forward_flops({**GQA, "head_dim": 8}, 1, 4) < peers.llama_forward_flops(GQA, 1, 4)  # head_dim is read
    assert peers.matmul_flops(1024) == 2 * 1024**3


def test_forward_and_training_flops_equal_torchs_flop_counter(peers):
    # eager attention: the counter sees the score and value matmuls (the CPU SDPA kernel has no formula)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = make_gqa_llama(positions=32, attn_implementation="eager")
    ids = torch.randint(0, 96, (3, 32))
    with FlopCounterMode(display=False) as fwd:
        model(ids)
    assert fwd.get_total_flops() == peers.llama_forward_flops(model.config.to_dict(), 3, 32)
    with FlopCounterMode(display=False) as both:
        model(ids).logits.sum().backward()
    assert both.get_total_flops() == peers.llama_training_flops(model.config.to_dict(), 3, 32)


def test_csv_has_exactly_the_columns_and_refuses_others(peers, tmp_path):
    path = tmp_path / "peers.csv"
    row = {"date": "2026-12-05T00:00:00Z", "model": "tiny", "task": "esd", "tool": "compbench", "seconds": 1.5}
    peers.append_csv(path, [row])
    peers.append_csv(path, [{**row, "tool": "weightwatcher"}])
    with open(path, newline="") as f:
        lines = list(csv.reader(f))
    assert tuple(lines[0]) == peers.COLUMNS and len(lines) == 3  # one header
    back = peers.read_csv(path)
    assert [r["tool"] for r in back] == ["compbench", "weightwatcher"] and back[0]["seconds"] == "1.5" and back[0]["goal"] == ""
    for col in ("date", "commit", "cpu", "threads", "load_before", "tool", "version", "task", "size", "seconds", "throughput", "ratio"):
        assert col in peers.COLUMNS
    with pytest.raises(ValueError, match=r"\['speed'\].*allowed: date"):
        peers.append_csv(path, [{**row, "speed": 2}])
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="move it aside"):
        peers.append_csv(other, [row])


def test_finish_gives_the_speedup_and_the_goal_to_compbenchs_row(peers):
    rows = [
        {"task": "esd", "tool": "compbench", "seconds": 2.0},
        {"task": "esd", "tool": "weightwatcher", "seconds": 12.0},
        {"task": "galore_step", "tool": "compbench", "seconds": 1.05},
        {"task": "galore_step", "tool": "galore-torch", "seconds": 1.0},
        {"task": "sparsegpt", "tool": "compbench", "seconds": 3.0},
        {"task": "sparsegpt", "tool": "llmcompressor", "seconds": 2.0},
        {"task": "matmul_peak", "tool": "torch.matmul", "seconds": 0.1, "ratio": 1.0},
    ]
    peers.finish(rows)
    assert (rows[0]["ratio"], rows[0]["meets"]) == (6.0, "yes") and rows[1]["ratio"] == ""
    assert rows[2]["ratio"] == pytest.approx(1 / 1.05, abs=1e-4) and rows[2]["meets"] == "yes"  # within 1.1x
    assert (rows[4]["ratio"], rows[4]["meets"]) == (pytest.approx(2 / 3, abs=1e-4), "no")
    assert rows[6]["ratio"] == 1.0 and "meets" not in rows[6]
    with pytest.raises(ValueError, match="one compbench row and one peer row"):
        peers.finish([{"task": "esd", "tool": "compbench", "seconds": 1.0}])


def test_pair_rows_take_the_median_and_keep_the_order(peers):
    times = {"compbench": [3.0, 1.0, 2.0], "lm-eval": [4.0, 4.0, 8.0]}
    rows = peers.pair_rows(
        "perplexity", "2 windows", times, 3, 100, "tokens/s", "perplexity", {"compbench": 9.5, "lm-eval": 9.6}, "yes", "c"
    )
    assert [(r["tool"], r["seconds"], r["throughput"], r["value"]) for r in rows] == [
        ("compbench", 2.0, 50.0, 9.5),
        ("lm-eval", 4.0, 25.0, 9.6),
    ]
    assert set(rows[0]) <= set(peers.COLUMNS) and "version" not in rows[0]
    assert peers.pair_rows("esd", "", times, 3, 1, "", "", {"lm-eval": 0}, "", "", versions={"lm-eval": "0.4"})[0]["version"] == "0.4"


def test_alternate_excludes_the_warmup_and_swaps_the_order(peers):
    calls = []
    tools = {"a": (None, lambda: calls.append("a") or "ra"), "b": (lambda: 7, lambda x: calls.append(f"b{x}") or "rb")}
    out = peers.alternate(tools, repeats=2, warmup=1)
    assert calls == ["a", "b7", "b7", "a", "a", "b7"]
    assert len(out["a"][0]) == 2 and len(out["b"][0]) == 2 and out["a"][1] == "ra" and out["b"][1] == "rb"
    with pytest.raises(ValueError, match="repeats=0"):
        peers.alternate(tools, repeats=0)


def test_latest_runs_and_the_markdown_table(peers):
    base = {c: "" for c in peers.COLUMNS}
    rows = [
        {**base, "date": "2026-12-01T00:00:00Z", "commit": "a", "model": "tiny", "task": "esd", "tool": "compbench", "seconds": "1"},
        {**base, "date": "2026-12-02T00:00:00Z", "commit": "b", "model": "tiny", "task": "esd", "tool": "compbench", "seconds": "2"},
        {**base, "date": "2026-12-01T00:00:00Z", "commit": "a", "model": "smollm2", "task": "esd", "tool": "compbench", "seconds": "3"},
    ]
    latest = peers.latest_runs(rows)
    assert [(r["model"], r["seconds"]) for r in latest] == [("tiny", "2"), ("smollm2", "3")]
    table = peers.markdown_table(latest).splitlines()
    assert table[0].startswith("| model | task |") and len(table) == 4


def test_bad_arguments_name_the_value_and_what_is_allowed(peers, capsys):
    for argv, msg in (
        (["--tasks", "esd,flops"], "unknown task(s) ['flops']; allowed: esd"),
        (["--threads", "0"], "--threads 0 must be >= 1"),
        (["--sparsity", "1.5"], "--sparsity 1.5 must be in (0, 1)"),
        (["--model", "/nonexistent"], "not 'tiny' and not a model directory"),
    ):
        with pytest.raises(SystemExit):
            peers.parse(argv)
        assert msg in capsys.readouterr().err
    args = peers.parse(["--model", "tiny"])
    assert (args.seq_len, args.sparsity, args.prune_repeats) == (256, 0.5, args.repeats)

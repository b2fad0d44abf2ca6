"""Peer ratios (issue 18, item 3): compbench beside the tools it reimplements, on the same
model, the same tokens and the same threads, in one invocation. A benchmark, not a test.

    bash workflow/run.sh python workflow/benchmarks/peers.py --model tiny
    bash workflow/run.sh python workflow/benchmarks/peers.py --model /path/to/smollm2 [--threads N]
    bash workflow/run.sh python workflow/benchmarks/peers.py --figure-only   # figure + markdown table from the CSV

Appends one row per tool and task to ``workflow/benchmarks/peers.csv`` (:data:`COLUMNS`: date,
commit, CPU model, threads, load average before the task, ...) and draws ``docs/peers.png``.

Every pair runs back to back in one process, on the same model object or files, the same
token windows and the same thread count (``torch.set_num_threads`` and the ``*_NUM_THREADS``
variables, set before numpy or torch is imported); each tool runs once as a warm-up, then
``--repeats`` times, alternating which one goes first; ``seconds`` is the median. The results
are compared, and a disagreement is written into the row (``agrees``, ``check``), not hidden.

* ``esd``: eigenvalues and power-law fit of every decoder linear (7 per block): compbench
  (``spectra.esd.analyse``, xmin rule ``full``, the one equal to WeightWatcher's) vs
  WeightWatcher 0.7.7 ``analyze()`` with its defaults on the same ``nn.Linear`` objects; α per matrix.
* ``perplexity``: compbench ``perplexity.evaluate`` vs lm-eval's HF backend
  (``HFLM.loglikelihood_rolling``) on the same windows. Each window is one lm-eval document given
  as token ids (no re-tokenisation), its first token as lm-eval's prefix token, so that both score
  the same ``seq_len - 1`` tokens of every window with the same context; the perplexities must agree
  to 1e-3 relative.
* ``sparsegpt``, ``wanda``: compbench ``prune_model`` vs llmcompressor 0.14 ``oneshot`` at one
  uniform sparsity with the same calibration windows; ``galore_step``, ``galore_refresh``:
  compbench ``ProjectedAdamW`` vs galore-torch 1.0 ``GaLoreAdamW``, same model, rank, gradients.
  llmcompressor pins transformers <= 5.17, so these run in ``results/peers-venv`` (made here on
  first use, never a project dependency) by :mod:`peers_venv`, both tools in that one process.
* ``matmul_peak``, ``eval_gflops``, ``train_gflops``: the physical limit, i.e. a plain
  ``torch.matmul`` (best of a few square sizes) and the matmul GFLOP/s that the evaluation and a
  training step (forward + backward) achieve (:func:`llama_forward_flops`), in the same run.

``ratio``: on compbench's row of a peer task, the peer's median seconds / compbench's (> 1:
compbench faster; the goals of issue 18 in :data:`GOALS`); on a limit row, the fraction of
the same process's matmul peak.

The helpers above ``main`` import neither numpy nor torch (tests/core/test_peers.py).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CSV_PATH = HERE / "peers.csv"
FIGURE_PATH = ROOT / "docs" / "peers.png"
VENV = ROOT / "results" / "peers-venv"
# The peers venv's pins: llmcompressor 0.14 accepts torch 2.10-2.14.0 and pins transformers 5.15-5.17.
PEER_PINS = ("torch==2.13.0", "llmcompressor==0.14.0.1", "galore-torch==1.0")

COLUMNS = (
    "date", "commit", "cpu", "threads", "load_before", "model", "task", "size", "tool", "version", "torch",
    "repeats", "seconds", "throughput", "unit", "ratio", "goal", "meets", "quality", "value", "agrees", "check", "note",
)  # fmt: skip

# task -> (the least speed-up of compbench over the peer, the goal as issue 18 states it)
GOALS = {
    "esd": (5.0, ">= 5x faster than weightwatcher"),
    "perplexity": (1.0, ">= 1.0x lm-eval's throughput"),
    "sparsegpt": (1.0, "time <= 1.0x llmcompressor"),
    "wanda": (1.0, "time <= 1.0x llmcompressor"),
    "galore_step": (1 / 1.1, "time <= 1.1x galore-torch"),
}
TASKS = ("esd", "perplexity", "train", "prune", "galore")  # what --tasks selects (prune, galore: the peers venv)

# Sizes by model: the tiny model of the embedded default, or a real one (SmolLM2-135M)
PRESETS = {
    "tiny": dict(seq_len=256, windows=64, batch_size=8, calib=32, sparsity=0.5, rank=128, train_batch=8, galore_steps=5, repeats=5),
    "real": dict(seq_len=512, windows=16, batch_size=4, calib=16, sparsity=0.5, rank=128, train_batch=4, galore_steps=5, repeats=3),
}


# ------------------------------------------------------------------------------------ helpers


def llama_forward_flops(cfg: dict, batch: int, seq: int, lm_head: bool = True) -> int:
    """Matmul FLOPs (2 per multiply-add) of one forward pass of a LLaMA-style decoder over
    ``batch`` sequences of ``seq`` tokens: the seven linears of every block (q, k, v, o with
    grouped-query heads; gate, up, down), attention scores QKᵀ and their product with V counted
    dense over all ``seq`` × ``seq`` positions (what a plain kernel computes; causal kernels may
    skip half), and the output head. Norms, rotary embeddings, softmax and activations are not
    counted. A training step (forward + backward) is 3× this (:func:`llama_training_flops`)."""
    h, inter, layers = int(cfg["hidden_size"]), int(cfg["intermediate_size"]), int(cfg["num_hidden_layers"])
    heads = int(cfg["num_attention_heads"])
    kv = int(cfg.get("num_key_value_heads") or heads)
    hd = int(cfg.get("head_dim") or h // heads)
    linears = h * hd * (2 * heads + 2 * kv) + 3 * h * inter  # multiply-adds per token and block
    attention = 2 * heads * hd * seq  # QKᵀ and (softmax)V per token and block
    head = h * int(cfg["vocab_size"]) if lm_head else 0
    return 2 * batch * seq * (layers * (linears + attention) + head)


def llama_training_flops(cfg: dict, batch: int, seq: int) -> int:
    """Forward + backward: the backward pass does two matmuls per forward matmul (the gradient
    of the input and of the weight), so 3× the forward FLOPs."""
    return 3 * llama_forward_flops(cfg, batch, seq)


def matmul_flops(n: int) -> int:
    return 2 * n**3


def median(xs) -> float:
    return float(statistics.median(xs))


def alternate(tools: dict[str, tuple[Callable | None, Callable]], repeats: int, warmup: int = 1) -> dict[str, tuple[list[float], object]]:
    """Time every tool's ``run(prepare())`` ``repeats`` times after ``warmup`` untimed runs,
    alternating which tool goes first (only ``run`` is timed). Returns name -> (seconds, last result)."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be >= 1")
    names = list(tools)
    times: dict[str, list[float]] = {n: [] for n in names}
    last: dict[str, object] = {}
    for r in range(warmup + repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            prepare, run = tools[n]
            arg = prepare() if prepare is not None else None
            t0 = time.perf_counter()
            last[n] = run(arg) if prepare is not None else run()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[n].append(dt)
    return {n: (times[n], last[n]) for n in names}


def pair_rows(
    task: str,
    size: str,
    times: dict,
    repeats: int,
    work: float,
    unit: str,
    quality: str,
    values: dict,
    agrees: str,
    check: str,
    versions=None,
) -> list[dict]:
    """One row per tool of a pair, in the order of ``values`` (tool -> the compared quantity):
    median seconds, throughput = ``work`` / median seconds, and the comparison of the pair."""
    rows = []
    for tool, value in values.items():
        sec = median(times[tool])
        row = dict(
            task=task, size=size, tool=tool, repeats=repeats, seconds=sec, throughput=work / sec, unit=unit, quality=quality, value=value
        )
        rows.append({**row, "agrees": agrees, "check": check, **({"version": versions[tool]} if versions else {})})
    return rows


def finish(rows: list[dict]) -> list[dict]:
    """Fill ``ratio``, ``goal`` and ``meets`` of the peer tasks: compbench's row gets the peer's
    median seconds / its own and the goal of :data:`GOALS`; the peer's row is the reference."""
    by_task: dict[str, list[dict]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    for task, group in by_task.items():
        if task not in GOALS:
            continue
        ours = [r for r in group if r["tool"] == "compbench"]
        peers = [r for r in group if r["tool"] != "compbench"]
        if len(ours) != 1 or len(peers) != 1:
            raise ValueError(f"task {task!r} needs one compbench row and one peer row; got tools {[r['tool'] for r in group]}")
        least, text = GOALS[task]
        ratio = float(peers[0]["seconds"]) / float(ours[0]["seconds"])
        ours[0].update(ratio=round(ratio, 4), goal=text, meets="yes" if ratio >= least else "no")
        peers[0].update(ratio="", goal=text, meets="")
    return rows


def machine(threads: int) -> dict:
    """The fields every row of this run shares: date (UTC), commit (``+dirty`` with uncommitted
    changes), CPU model name (/proc/cpuinfo) and thread count."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout
        commit = (commit or "unknown") + ("+dirty" if dirty.strip() else "")
    except OSError:
        commit = "unknown"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"date": date, "commit": commit, "cpu": cpu, "threads": threads}


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def append_csv(path: Path, rows: list[dict]) -> None:
    """Append rows with exactly :data:`COLUMNS` (header written once); an unknown field fails."""
    for row in rows:
        extra = set(row) - set(COLUMNS)
        if extra:
            raise ValueError(f"row has fields {sorted(extra)} that are not columns of {path.name}; allowed: {', '.join(COLUMNS)}")
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if tuple(header) != COLUMNS:
            raise ValueError(f"{path}: its header {header} is not this script's columns {list(COLUMNS)}; move it aside")
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        for row in rows:
            w.writerow({c: row.get(c, "") for c in COLUMNS})


def latest_runs(rows: list[dict]) -> list[dict]:
    """The rows of the latest run (by date) of every model; a run is its date and commit."""
    last: dict[str, tuple[str, str]] = {}
    for r in rows:
        key = (r["date"], r["commit"])
        if r["model"] not in last or key[0] > last[r["model"]][0]:
            last[r["model"]] = key
    return [r for r in rows if (r["date"], r["commit"]) == last[r["model"]]]


def markdown_table(rows: list[dict]) -> str:
    head = ("model", "task", "size", "tool", "version", "seconds", "throughput", "ratio", "goal met", "agrees", "check")
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        thr = f"{float(r['throughput']):.4g} {r['unit']}" if r["throughput"] not in ("", None) else ""
        cells = (
            r["model"],
            r["task"],
            r["size"],
            r["tool"],
            r["version"],
            f"{float(r['seconds']):.4g}",
            thr,
            r.get("ratio", ""),
            r.get("meets", ""),
            r.get("agrees", ""),
            r.get("check", ""),
        )
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def figure(rows: list[dict], path: Path) -> None:
    """Two panels from the latest run of each model: compbench's speed-up over each peer (with
    the goal), and the fraction of the matmul peak that evaluation and training reach."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = latest_runs(rows)
    models = sorted({r["model"] for r in rows})
    fig, ax = plt.subplots(1, 2, figsize=(12, 0.9 + 0.45 * max(4, len(GOALS) * len(models))), layout="constrained")
    labels, vals, goals, colors = [], [], [], []
    for i, m in enumerate(models):
        for task, (least, _text) in GOALS.items():
            r = [x for x in rows if x["model"] == m and x["task"] == task and x["tool"] == "compbench"]
            if r and r[0]["ratio"] not in ("", None):
                peer = [x for x in rows if x["model"] == m and x["task"] == task and x["tool"] != "compbench"][0]
                labels.append(f"{m}: {task} vs {peer['tool']}")
                vals.append(float(r[0]["ratio"]))
                goals.append(least)
                colors.append("C2" if float(r[0]["ratio"]) >= least else "C3")
    y = range(len(vals))
    ax[0].barh(list(y), vals, color=colors)
    ax[0].scatter(goals, list(y), marker="|", s=300, color="k", label="goal", zorder=3)
    ax[0].axvline(1, color="grey", lw=0.8)
    ax[0].set_xscale("log")
    ax[0].set_yticks(list(y), labels)
    ax[0].invert_yaxis()
    ax[0].set_xlabel("compbench speed-up over the peer (peer seconds / compbench seconds)")
    ax[0].legend(loc="lower right")
    for yi, v in zip(y, vals):
        ax[0].text(v, yi, f" {v:.2f}x", va="center", fontsize=8)
    labels, vals, notes = [], [], []
    for m in models:
        for task in ("eval_gflops", "train_gflops"):
            r = [x for x in rows if x["model"] == m and x["task"] == task]
            if r:
                labels.append(f"{m}: {task.split('_')[0]}, torch {r[0]['torch']}")
                vals.append(float(r[0]["ratio"]))
                notes.append(f" {float(r[0]['throughput']):.1f} GFLOP/s")
        for peak in (x for x in rows if x["model"] == m and x["task"] == "matmul_peak"):
            labels.append(f"{m}: matmul peak, torch {peak['torch']}")
            vals.append(1.0)
            notes.append(f" {float(peak['throughput']):.1f} GFLOP/s")
    y = range(len(vals))
    ax[1].barh(list(y), vals, color="C0")
    ax[1].set_yticks(list(y), labels)
    ax[1].invert_yaxis()
    ax[1].set_xlim(0, 1.35 * max([1.0, *vals]))
    ax[1].set_xlabel("fraction of the torch.matmul peak of the same process")
    for yi, v, n in zip(y, vals, notes):
        ax[1].text(v, yi, n, va="center", fontsize=8)
    runs = sorted({(r["model"], r["date"], r["commit"], r["cpu"], r["threads"]) for r in rows})
    fig.suptitle("; ".join(f"{m}: {d} {c}, {cpu}, {t} threads" for m, d, c, cpu, t in runs), fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------- measurements


def matmul_peak(sizes=(1024, 2048, 4096), repeats: int = 5) -> dict:
    """GFLOP/s of a plain float32 ``torch.matmul`` of square matrices: the best size's median."""
    import torch

    best = None
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = alternate({"mm": (None, lambda: torch.matmul(a, b))}, repeats)
        sec = median(out["mm"][0])
        gflops = matmul_flops(n) / sec / 1e9
        if best is None or gflops > best["gflops"]:
            best = {"n": n, "seconds": sec, "gflops": gflops, "repeats": repeats}
    return best


def build_tiny(text: str, out_dir: Path) -> Path:
    """The embedded default's tiny LLaMA (config/config.yaml: hidden 256, 4 blocks, vocab 8192),
    randomly initialised (seed 0), with a BPE tokenizer trained on ``text``, saved to ``out_dir``.
    Random weights: speed and agreement only."""
    import torch
    import yaml

    from compbench import models, tokenizer

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    tok = tokenizer.train([text], int(cfg["tokenizer"]["vocab_size"]))
    torch.manual_seed(0)
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM(models.tiny_config(cfg["tiny_model"], len(tok), tok))
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def default_text(downloads: Path) -> str:
    """The embedded corpus's natural text (gensim's Wikipedia sample and Lee news corpus, fetched
    as the workflow does), every document joined like WikiText-2."""
    from compbench import corpus

    return "\n\n".join(corpus.wiki(downloads) + corpus.lee(downloads))


def windows(tokenizer, text: str, seq_len: int, calib: int, n_eval: int):
    """Calibration windows, then evaluation windows, cut from one tokenisation of ``text``."""
    import torch

    need = (calib + n_eval) * seq_len
    ids = torch.tensor(tokenizer(text[: need * 12], add_special_tokens=False).input_ids, dtype=torch.long)
    if ids.numel() < need:
        raise ValueError(
            f"the text gives {ids.numel()} tokens, fewer than the {need} needed: ({calib} calibration + {n_eval} evaluation) windows × {seq_len}"
        )
    w = ids[:need].view(calib + n_eval, seq_len)
    return w[:calib].contiguous(), w[calib:].contiguous()


def task_esd(model, repeats: int) -> list[dict]:
    import logging

    import numpy as np
    import weightwatcher
    from torch import nn

    from compbench.blocks import linear_modules
    from compbench.spectra import esd

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    mods = linear_modules(model)
    linears = nn.ModuleList([m for _, _, m in mods])
    out = alternate(
        {
            "compbench": (None, lambda: esd.analyse(model, rules=["full"], device="cpu", progress=False)[0]),
            "weightwatcher": (None, lambda: weightwatcher.WeightWatcher(model=linears).analyze()),
        },
        repeats,
    )
    ours = out["compbench"][1]["alpha_full"].to_numpy(dtype=float)
    theirs = out["weightwatcher"][1]["alpha"].to_numpy(dtype=float)
    n = len(mods)
    if len(theirs) != n:
        agrees, check = "no", f"weightwatcher analysed {len(theirs)} of the {n} matrices"
    else:
        diff = np.abs(ours - theirs)
        bad = int((diff > 1e-3 * np.abs(theirs)).sum())
        agrees = "yes" if bad == 0 else "no"
        check = f"max |Δα| {np.nanmax(diff):.2g} over {n} matrices; {bad} beyond 1e-3 relative"
    times = {tool: t for tool, (t, _) in out.items()}
    means = {"compbench": float(np.nanmean(ours)), "weightwatcher": float(np.nanmean(theirs))}
    rows = pair_rows("esd", f"{n} matrices ({n // 7}×7)", times, repeats, n, "matrices/s", "mean α", means, agrees, check)
    rows[0]["note"] = "xmin rule full (WeightWatcher's): SVD in float32 (torch), fit in float64"
    rows[1]["note"] = "analyze() defaults on the same nn.Linear objects; its SVD in float64 (SciPy on a CPU)"
    return rows


def _lm_eval_windows(model, tok, seq_len: int, batch_size: int):
    """lm-eval's HF backend reading documents as token ids: a document's first token is its
    prefix token (what lm-eval puts in front of a text), so its rolling loglikelihood scores
    tokens 1..n-1 of the window from the same context as compbench's perplexity."""
    from lm_eval.models.huggingface import HFLM

    class WindowLM(HFLM):
        docs: dict[str, list[int]] = {}

        def tok_encode(self, string, **kw):
            ids = self.docs[string]
            self.custom_prefix_token_id = ids[0]
            return ids[1:]

    return WindowLM(pretrained=model, tokenizer=tok, batch_size=batch_size, max_length=seq_len, device="cpu")


def task_perplexity(model, tok, ids, batch_size: int, repeats: int) -> tuple[list[dict], float]:
    import math

    from lm_eval.api.instance import Instance

    from compbench import perplexity

    n, seq_len = ids.shape
    lm = _lm_eval_windows(model, tok, seq_len, batch_size)
    lm.docs = {f"window {i}": ids[i].tolist() for i in range(n)}
    requests = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(f"window {i}",), idx=i) for i in range(n)]
    flat = ids.reshape(-1)

    def theirs(reqs):
        return lm.loglikelihood_rolling(reqs, disable_tqdm=True)

    warm = min(n, batch_size)
    perplexity.evaluate(model, flat[: warm * seq_len], seq_len, batch_size)  # warm-up on one batch each
    theirs(requests[:warm])
    out = alternate(
        {
            "compbench": (None, lambda: perplexity.evaluate(model, flat, seq_len, batch_size)),
            "lm-eval": (None, lambda: theirs(requests)),
        },
        repeats,
        warmup=0,
    )
    tokens = n * (seq_len - 1)
    ppl_ours = out["compbench"][1]["perplexity"]
    ppl_theirs = math.exp(-sum(out["lm-eval"][1]) / tokens)
    rel = abs(ppl_ours - ppl_theirs) / ppl_theirs
    agrees = "yes" if rel <= 1e-3 else "no"
    check = f"perplexity relative difference {rel:.2g} (tolerance 1e-3)"
    size = f"{n} windows × {seq_len} tokens, batch {batch_size}"
    times = {tool: t for tool, (t, _) in out.items()}
    values = {"compbench": ppl_ours, "lm-eval": ppl_theirs}
    rows = pair_rows("perplexity", size, times, repeats, tokens, "tokens/s", "perplexity", values, agrees, check)
    rows[1]["note"] = "HFLM.loglikelihood_rolling, documents given as token ids (one per window)"
    return rows, median(out["compbench"][0])


def task_train(model, ids, repeats: int) -> float:
    """Median seconds of one forward + backward pass (causal-LM loss) on ``ids``."""
    import copy

    m = copy.deepcopy(model).train()

    def step():
        m.zero_grad(set_to_none=True)
        m(input_ids=ids, labels=ids).loss.backward()

    out = alternate({"train": (None, step)}, repeats)
    return median(out["train"][0])


def limit_rows(
    cfg: dict, peak: dict, eval_seconds: float | None, eval_shape, train_seconds: float | None, train_shape, repeats
) -> list[dict]:
    rows = [
        dict(task="matmul_peak", size=f"{peak['n']}×{peak['n']} float32", tool="torch.matmul", repeats=peak["repeats"], seconds=peak["seconds"],
             throughput=peak["gflops"], unit="GFLOP/s", ratio=1.0)
    ]  # fmt: skip
    for task, sec, (b, s), flops in (
        ("eval_gflops", eval_seconds, eval_shape, llama_forward_flops),
        ("train_gflops", train_seconds, train_shape, llama_training_flops),
    ):
        if sec is None:
            continue
        g = flops(cfg, b, s) / sec / 1e9
        rows.append(
            dict(task=task, size=f"{b}×{s} tokens", tool="compbench", repeats=repeats, seconds=sec, throughput=g, unit="GFLOP/s",
                 ratio=round(g / peak["gflops"], 4), note="matmul FLOPs (llama_forward_flops) / median seconds")
        )  # fmt: skip
    return rows


def ensure_venv(venv: Path) -> Path:
    """``results/peers-venv`` with :data:`PEER_PINS`, made once (network to PyPI, ~1.6 GB)."""
    python = venv / "bin" / "python"
    stamp = venv / ".peers-pins"
    if python.exists() and stamp.exists() and stamp.read_text() == "\n".join(PEER_PINS):
        return python
    if not python.exists():
        print(f"[peers] creating {venv}", file=sys.stderr)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    print(f"[peers] installing {' '.join(PEER_PINS)} into {venv} (first time: a few minutes)", file=sys.stderr)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PINS], check=True)
    stamp.write_text("\n".join(PEER_PINS))
    return python


def run_venv(python: Path, job: dict, workdir: Path, threads: int) -> list[dict]:
    """Run :mod:`peers_venv` in the peers venv on ``job``; returns its rows."""
    (workdir / "job.json").write_text(json.dumps(job))
    env = {**os.environ, **thread_env(threads), "PYTHONPATH": str(ROOT / "workflow")}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([str(python), str(HERE / "peers_venv.py"), str(workdir / "job.json")], env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"peers_venv.py failed (exit {proc.returncode}); its output is above")
    return json.loads((workdir / "rows.json").read_text())


def thread_env(threads: int) -> dict:
    return {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


# ----------------------------------------------------------------------------------- main


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny", help="'tiny' (built here, random weights) or a model directory (e.g. SmolLM2's)")
    p.add_argument("--tokenizer", help="tokenizer directory (default: the model directory)")
    p.add_argument("--name", help="the model's name in the table (default: tiny, or the directory's name)")
    p.add_argument("--text", type=Path, help="a text file (default: the embedded corpus's wiki + lee text)")
    p.add_argument("--downloads", type=Path, default=ROOT / "results" / "downloads", help="where the corpus wheel is cached")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every tool (default: all cores)")
    p.add_argument(
        "--prune-repeats", type=int, default=None, help="timed pruning runs per tool (default: --repeats for tiny, 2 for a real model)"
    )
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    for k in PRESETS["tiny"]:
        p.add_argument(
            "--" + k.replace("_", "-"),
            type=float if k == "sparsity" else int,
            help=("timed runs per tool (median); " if k == "repeats" else "")
            + f"default: tiny {PRESETS['tiny'][k]}, real {PRESETS['real'][k]}",
        )
    p.add_argument("--venv", type=Path, default=VENV, help="the peers venv (made if missing)")
    p.add_argument("--csv", type=Path, default=CSV_PATH)
    p.add_argument("--figure", type=Path, default=FIGURE_PATH)
    p.add_argument("--figure-only", action="store_true", help="only draw the figure and print the table of the CSV's latest runs")
    args = p.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        p.error(f"unknown task(s) {bad}; allowed: {', '.join(TASKS)}")
    args.tasks = tasks
    if args.threads < 1:
        p.error(f"--threads {args.threads} must be >= 1")
    preset = PRESETS["tiny" if args.model == "tiny" else "real"]
    for k, v in preset.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if not 0 < args.sparsity < 1:
        p.error(f"--sparsity {args.sparsity} must be in (0, 1)")
    for k in ("seq_len", "windows", "batch_size", "calib", "rank", "train_batch", "galore_steps", "repeats"):
        if getattr(args, k) < 1:
            p.error(f"--{k.replace('_', '-')} {getattr(args, k)} must be >= 1")
    if args.train_batch > min(args.windows, args.calib):
        p.error(f"--train-batch {args.train_batch} must be at most --windows ({args.windows}) and --calib ({args.calib})")
    if args.prune_repeats is None:
        args.prune_repeats = args.repeats if args.model == "tiny" else min(args.repeats, 2)
    if args.model != "tiny" and not (Path(args.model) / "config.json").exists():
        p.error(f"--model {args.model}: not 'tiny' and not a model directory (no config.json)")
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.figure_only:
        if not args.csv.exists():
            sys.exit(f"--figure-only: no table at {args.csv}; run the benchmark first (without --figure-only)")
        rows = read_csv(args.csv)
        figure(rows, args.figure)
        print(markdown_table(latest_runs(rows)))
        return
    os.environ.update(thread_env(args.threads))  # before numpy and torch are imported
    import tempfile

    import torch

    from compbench import models

    torch.set_num_threads(args.threads)
    run_fields = machine(args.threads)
    text = args.text.read_text() if args.text else default_text(args.downloads)
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        tmp = Path(tmp)
        if args.model == "tiny":
            model_dir = build_tiny(text[:400_000], tmp / "tiny")
            name = args.name or "tiny"
        else:
            model_dir = Path(args.model)
            name = args.name or model_dir.name
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(args.tokenizer or model_dir))
        model = models.load(model_dir)
        cfg = model.config.to_dict()
        calib, evals = windows(tok, text, args.seq_len, args.calib, args.windows)
        versions = {"torch": torch.__version__}
        rows: list[dict] = []

        def add(new: list[dict], load: float, versions_of: dict) -> None:
            for r in new:
                r.setdefault("version", versions_of.get(r["tool"], ""))
                r.setdefault("torch", versions["torch"])
                rows.append({**run_fields, "model": name, "load_before": load, **r})

        from importlib.metadata import version

        import compbench

        ours = {"compbench": compbench.__version__, "torch.matmul": torch.__version__}
        load_peak = load_average()
        peak = matmul_peak()
        eval_seconds = train_seconds = None
        if "esd" in args.tasks:
            load_e = load_average()
            add(task_esd(model, args.repeats), load_e, {**ours, "weightwatcher": version("weightwatcher")})
        if "perplexity" in args.tasks:
            load_p = load_average()
            new, eval_seconds = task_perplexity(model, tok, evals, args.batch_size, args.repeats)
            add(new, load_p, {**ours, "lm-eval": version("lm_eval")})
        if "train" in args.tasks:
            train_seconds = task_train(model, evals[: args.train_batch], args.repeats)
        add(
            limit_rows(
                cfg, peak, eval_seconds, (args.windows, args.seq_len), train_seconds, (args.train_batch, args.seq_len), args.repeats
            ),
            load_peak,
            ours,
        )
        venv_tasks = [t for t in ("prune", "galore") if t in args.tasks]
        if venv_tasks:
            python = ensure_venv(args.venv)
            from compbench.artifacts import save_tensors

            save_tensors(tmp / "ids.safetensors", {"calib": calib, "eval": evals})
            job = dict(
                model_dir=str(model_dir), tokenizer_dir=str(args.tokenizer or model_dir), ids=str(tmp / "ids.safetensors"), tasks=venv_tasks, threads=args.threads, repeats=args.repeats,
                prune_repeats=args.prune_repeats, batch_size=args.batch_size, sparsity=args.sparsity, rank=args.rank,
                train_batch=args.train_batch, galore_steps=args.galore_steps, load_before=load_average(),
            )  # fmt: skip
            for r in run_venv(python, job, tmp, args.threads):
                load_r = r.pop("load_before")
                rows.append({**run_fields, "model": name, "load_before": load_r, **r})
    finish(rows)
    append_csv(args.csv, rows)
    print(markdown_table(rows))
    print(f"[peers] {len(rows)} rows appended to {args.csv}", file=sys.stderr)
    figure(read_csv(args.csv), args.figure)
    print(f"[peers] figure: {args.figure}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""bf16 vs fp32 on this CPU for a real model (issue 17, item 5): evaluation and pruning.

Runs, in one process, on the same model, text, calibration and threads:

* perplexity of ``--windows`` windows of ``--seq-len`` tokens of the corpus test split
  (data set ``natural``) with the model loaded in float32 and in bfloat16;
* Wanda at 50 % (uniform) with the model in float32 and in bfloat16 (the scores are
  computed in float32 either way, compbench.prune.methods), then the perplexity of the
  pruned model evaluated in float32 (so only the pruning's dtype differs);
* with ``--pruned-eval``: the float32-pruned model evaluated in float32 and in bfloat16
  (does bf16 evaluation agree on a damaged model too, not only on the dense one?);
* with ``--variants DIR ...``: stored variants (e.g. 70-80 % pruned, low rank) evaluated
  in float32 and in bfloat16, one run each;
* with ``--prune METHOD:ALLOCATION_CSV ...``: each pruning (an allocation file of the
  run, e.g. ``results/allocation/smollm2/alpha-eps0.2-0.7.csv``) done with the model in
  float32 and in bfloat16, one run each, both pruned models then evaluated in
  ``--eval-dtype`` (the evaluation jobs' dtype): does the pruning's dtype move the
  numbers the verdicts compare?
* with ``--lm-eval TASKS_DIR``: lm-eval's zero-shot tasks (``--tasks``) on the dense model
  in float32 and in bfloat16, one run each (the row's ``perplexity`` column then holds
  the mean accuracy and ``task`` each task's accuracy and the items that differ).

Each timing is the median of ``--repeats`` runs after one warm-up. Appends rows to
``workflow/benchmarks/dtype.csv`` (date, CPU, threads, load before, task, dtype,
seconds, tokens/s, perplexity) and prints them.

    bash workflow/run.sh python workflow/benchmarks/dtype.py \\
        --model results/models/smollm2 --corpus results/corpus \\
        --calibration results/calibration/smollm2/tiny_32x256_s0.safetensors
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from compbench import models, perplexity, tokenizer, variants, zeroshot
from compbench.artifacts import load_tensors
from compbench.prune.methods import prune_model

OUT = Path(__file__).with_name("dtype.csv")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def timed(fn, repeats: int):
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--sources", nargs="+", default=["wiki", "lee"], help="the corpus sources (natural text only is read)")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pruned-eval", action="store_true", help="also evaluate the fp32-pruned model in fp32 and bf16")
    ap.add_argument("--variants", nargs="*", default=[], help="stored variant directories to evaluate in fp32 and bf16")
    ap.add_argument("--lm-eval", default=None, help="lm-eval task directory (rule lm_eval_tasks): dense zero-shot in fp32 and bf16")
    ap.add_argument("--tasks", nargs="+", default=["cb_arith", "cb_facts", "cb_continuation"])
    ap.add_argument(
        "--prune", nargs="*", default=[], help="METHOD:ALLOCATION_CSV: prune in fp32 and in bf16, evaluate both in --eval-dtype"
    )
    ap.add_argument("--eval-dtype", default="bfloat16", help="dtype the --prune results are evaluated in")
    ap.add_argument("--only-extra", action="store_true", help="skip the dense perplexity and Wanda timings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    tok = tokenizer.load(args.model)
    ids = tokenizer.encode_stream(tok, perplexity.DATASETS.get("natural")({"sources": args.sources}, args.corpus))
    calib = load_tensors(args.calibration)["ids"]
    rows = []

    def row(task, dtype, seconds, tokens, ppl):
        rows.append(
            {
                "date": datetime.date.today().isoformat(),
                "cpu": cpu_name(),
                "threads": args.threads,
                "load_1min_before": round(load_before, 2),
                "task": task,
                "dtype": dtype,
                "seconds": round(seconds, 3),
                "tokens_per_s": round(tokens / seconds, 1) if tokens else None,
                "perplexity": round(ppl, 4),
            }
        )
        print(rows[-1], flush=True)

    def ppl_of(model):
        return perplexity.evaluate(model, ids, args.seq_len, args.batch_size, "cpu", args.windows)

    for name in () if args.only_extra else ("float32", "bfloat16"):
        dtype = getattr(torch, name)
        model = models.load(args.model, dtype=dtype)
        s, res = timed(lambda: ppl_of(model), args.repeats)
        row(f"perplexity {args.windows}x{args.seq_len}", name, s, res["tokens"], res["perplexity"])

        def prune_once():
            m = models.load(args.model, dtype=dtype)
            ratios = {b: 0.5 for b in range(m.config.num_hidden_layers)}
            prune_model(m, "wanda", ratios, None, calib, "cpu")
            return m

        s, pruned = timed(prune_once, max(1, args.repeats - 1))
        pruned = pruned.float()
        row(f"wanda 50% uniform, calibration {tuple(calib.shape)}", name, s, calib.numel(), ppl_of(pruned)["perplexity"])
        if name == "float32" and args.pruned_eval:  # a pruned model's evaluation in each dtype (its perplexity is far from the dense one's)
            for e in ("float32", "bfloat16"):
                m = copy.deepcopy(pruned).to(getattr(torch, e))
                s, res = timed(lambda: ppl_of(m), 1)
                row(f"perplexity {args.windows}x{args.seq_len} of the fp32 wanda-50% model", e, s, res["tokens"], res["perplexity"])
    for v in args.variants:
        for name in ("float32", "bfloat16"):
            m, _ = variants.load(v, dtype=getattr(torch, name))
            s, res = timed(lambda: ppl_of(m), 1)
            row(f"perplexity {args.windows}x{args.seq_len} of variant {Path(v).name}", name, s, res["tokens"], res["perplexity"])
    for spec in args.prune:
        method, alloc = spec.split(":", 1)
        table = pd.read_csv(alloc)
        ratios = {int(b): float(r) for b, r in zip(table["block"], table["ratio"])}
        for name in ("float32", "bfloat16"):
            t = time.perf_counter()
            m = models.load(args.model, dtype=getattr(torch, name))
            prune_model(m, method, ratios, None, calib, "cpu")
            s = time.perf_counter() - t
            res = ppl_of(m.to(getattr(torch, args.eval_dtype)))
            row(
                f"{method} {Path(alloc).stem} pruned in this dtype (load + prune), evaluated in {args.eval_dtype}",
                name,
                s,
                calib.numel(),
                res["perplexity"],
            )
    if args.lm_eval:
        zeroshot.offline_env(Path(args.model).parents[1] / "hf_home", offline=True)
        correct = {}
        for name in ("float32", "bfloat16"):
            t = time.perf_counter()
            res = zeroshot.evaluate(args.model, args.tasks, args.lm_eval, 16, None, "cpu", name, log_samples=True)
            s = time.perf_counter() - t
            acc = {r["dataset"]: r["value"] for r in zeroshot.tidy(res) if r["metric"] == "acc"}
            correct[name] = {(i["dataset"], n): c for i in zeroshot.items(res) if i["metric"] == "acc" for n, c in enumerate(i["correct"])}
            differ = sum(correct[name][k] != correct["float32"][k] for k in correct[name])
            task = "lm-eval " + ", ".join(f"{t} {acc[t]:.3f}" for t in args.tasks) + f"; {differ} items differ from float32"
            row(task, name, s, None, statistics.mean(acc.values()))
    df = pd.DataFrame(rows)
    df.to_csv(OUT, mode="a", header=not OUT.exists(), index=False)
    print(f"appended {len(df)} rows to {OUT}")


if __name__ == "__main__":
    main()

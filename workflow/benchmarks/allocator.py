"""The jobs' malloc settings (compbench.allocator, issue 18): the embedded default's tiny
LLaMA (config/config.yaml), one pretraining step (bf16 autocast as ``pretrain.autocast``,
backward, clipping, AdamW; batch ``pretrain.batch_size``) and one perplexity batch (float32,
no gradients, batch ``evaluation.perplexity.batch_size``), each in a fresh process started
with glibc's malloc as it comes ("system") and with ``compbench.allocator``'s tunables
("tuned"), the two alternating ``--repeats`` times on the same batches. Each process times
``--steps`` steps after two warm-up steps and reports the median wall time, its user and
system CPU time and minor page faults per step, and its peak RSS.

Appends rows to ``workflow/benchmarks/allocator.csv`` (date, CPU, threads, workload, mode,
seconds per step, user/system seconds and page faults per step, peak RSS, speed-up over
"system", medians over the repeats) and prints them.

    bash workflow/run.sh python workflow/benchmarks/allocator.py [--threads 1 2] [--steps 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

WORKLOADS = ("pretrain_step", "perplexity_batch")


def child(workload: str, threads: int, steps: int, config_path: str) -> dict:
    import torch
    import yaml
    from amp import train_step
    from transformers import LlamaForCausalLM

    from compbench import models, pretrain

    torch.set_num_threads(threads)
    config = yaml.safe_load(Path(config_path).read_text())
    tm, p = config["tiny_model"], config["pretrain"]
    cfg = models.tiny_config(tm, vocab_size=config["tokenizer"]["vocab_size"])
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    gen = torch.Generator().manual_seed(0)
    if workload == "pretrain_step":
        spec = pretrain.TrainSpec(
            steps=steps, batch_size=p["batch_size"], lr=p["lr"], warmup=1, weight_decay=0.0,
            eval_every=steps, eval_windows=1, seed=0, autocast=p.get("autocast", "float32"),
        )  # fmt: skip
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.95))

        def step(batch):
            train_step(model, opt, spec, batch)

        batch_size = p["batch_size"]
    else:
        model.eval()
        batch_size = config["evaluation"]["perplexity"]["batch_size"]

        def step(batch):
            with torch.no_grad():
                model(batch, labels=batch)

    times = []
    for i in range(steps + 2):
        batch = torch.randint(0, cfg.vocab_size, (batch_size, tm["seq_len"]), generator=gen)
        if i == 2:
            r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        step(batch)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    usage = {
        "user_s": (r1.ru_utime - r0.ru_utime) / steps,
        "sys_s": (r1.ru_stime - r0.ru_stime) / steps,
        "minor_faults": (r1.ru_minflt - r0.ru_minflt) / steps,
    }
    return {"s_per_step": statistics.median(times), **usage, "peak_rss_mb": r1.ru_maxrss / 1024}


def run(mode: str, workload: str, threads: int, steps: int, config: str) -> dict:
    from compbench import allocator

    out = subprocess.run(
        [sys.executable, __file__, "--child", workload, "--threads", str(threads), "--steps", str(steps), "--config", config],
        env=allocator.environment(mode), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=WORKLOADS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads[0], args.steps, args.config)))
        return
    from profile_jobs import append, machine

    m = machine()
    rows = []
    for threads in args.threads:
        for workload in WORKLOADS:
            got = {"system": [], "tuned": []}
            for _ in range(args.repeats):
                for mode in got:
                    got[mode].append(run(mode, workload, threads, args.steps, args.config))
            med = {mode: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for mode, rs in got.items()}
            for mode, r in med.items():
                rows.append({**m, "model": "tiny (config.yaml)", "threads": threads, "workload": workload, "mode": mode,
                             "s_per_step": round(r["s_per_step"], 4), "user_s_per_step": round(r["user_s"], 4),
                             "sys_s_per_step": round(r["sys_s"], 4), "minor_faults_per_step": round(r["minor_faults"]),
                             "peak_rss_mb": round(r["peak_rss_mb"], 1), "repeats": args.repeats,
                             "speedup_vs_system": round(med["system"]["s_per_step"] / r["s_per_step"], 3)})  # fmt: skip
                print(rows[-1], flush=True)
    append(rows, "allocator.csv")


if __name__ == "__main__":
    main()

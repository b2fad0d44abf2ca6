"""Mixed-precision pretraining on this CPU (issue 18, "the compute itself"): the embedded
default's tiny LLaMA (config/config.yaml's tiny_model, vocabulary tokenizer.vocab_size), one
training step (forward under ``pretrain.autocast``, backward, clipping, AdamW) timed in
float32 and with bfloat16 autocast, at 1 and 2 threads, in one process, on the same batches
(uniform random tokens: the step's cost does not depend on the text). Each timing is the
median over ``--steps`` steps after two warm-up steps. Whether the trained model agrees is
measured by the workflow itself (the cold runs' pretraining curves; docs/operations.md).

Appends rows to ``workflow/benchmarks/amp.csv`` (date, CPU, threads, autocast, seconds per
step, tokens/s, speed-up over float32 at the same threads) and prints them.

    bash workflow/run.sh python workflow/benchmarks/amp.py [--threads 1 2] [--steps 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from transformers import LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_jobs import append, machine  # noqa: E402

from compbench import models, pretrain  # noqa: E402


def train_step(model, opt, spec: pretrain.TrainSpec, batch) -> None:
    """One step of compbench.pretrain.train's recipe: forward under ``spec.autocast``,
    backward, clipping to norm 1, the optimizer's step."""
    with pretrain.autocast_context(spec, torch.device("cpu")):
        loss = model(batch, labels=batch).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def step_times(cfg, spec: pretrain.TrainSpec, seq_len: int, steps: int) -> list[float]:
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps + 2):
        batch = torch.randint(0, cfg.vocab_size, (spec.batch_size, seq_len), generator=gen)
        t0 = time.perf_counter()
        train_step(model, opt, spec, batch)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    tm, p = config["tiny_model"], config["pretrain"]
    cfg = models.tiny_config(tm, vocab_size=config["tokenizer"]["vocab_size"])
    m = machine()
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        base = None
        for autocast in ("float32", "bfloat16"):
            spec = pretrain.TrainSpec(
                steps=args.steps, batch_size=p["batch_size"], lr=p["lr"], warmup=1, weight_decay=0.0,
                eval_every=args.steps, eval_windows=1, seed=0, autocast=autocast,
            )  # fmt: skip
            s = statistics.median(step_times(cfg, spec, tm["seq_len"], args.steps))
            base = base or s
            rows.append({**m, "model": "tiny (config.yaml)", "threads": threads, "autocast": autocast, "s_per_step": round(s, 4),
                         "tokens_per_s": round(p["batch_size"] * tm["seq_len"] / s), "speedup_vs_float32": round(base / s, 3)})  # fmt: skip
            print(rows[-1], flush=True)
    append(rows, "amp.csv")


if __name__ == "__main__":
    main()

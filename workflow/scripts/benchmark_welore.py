"""Benchmark (not a test) of low-rank (WeLore) compressed models against the dense one:
parameters, inference throughput, training-step throughput and memory of the three
fine-tuning modes. Appends rows to workflow/benchmarks/welore.csv (kept in the repo).

    bash workflow/run.sh python workflow/scripts/benchmark_welore.py [--model results/models/tiny] [--synthetic]

All configurations run in one process, one after the other. Memory: on CUDA the max
allocated during the timed steps; on the CPU the peak resident set size during them
(sampled every 2 ms by a thread from /proc/self/statm) above the RSS before them,
plus the exact bytes of parameters, gradients and AdamW state (``state_mb``). ``--model`` benchmarks a saved model
(e.g. the embedded default's tiny LLaMA); ``--synthetic`` a larger LLaMA-shaped model
(hidden 1024, intermediate 2752, 4 blocks) whose weights are given power-law
spectra with a different exponent per matrix, so that WeLore's rule has
non-uniform tails to act on. Random weights: speed and memory only, no quality.
"""

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow"))

VARIANTS = [("dense", None, 0.0), ("welore", "welore", 0.3), ("welore", "welore", 0.5), ("uniform", "uniform", 0.5)]
MODES = ["infer", "full", "lrc", "lora"]


def build(model_arg: str, synthetic: bool, allocation: str | None, ratio: float):
    import pandas as pd
    import torch

    from compbench import models
    from compbench.lowrank import compress as lowrank
    from compbench.spectra import esd as spectra

    if synthetic:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        cfg = LlamaConfig(
            vocab_size=8192,
            hidden_size=1024,
            intermediate_size=2752,
            num_hidden_layers=4,
            num_attention_heads=8,
            num_key_value_heads=8,
            max_position_embeddings=256,
        )
        model = LlamaForCausalLM(cfg)
        with torch.no_grad():
            for i, (_, _, lin) in enumerate(spectra.linear_modules(model)):
                m, n = lin.weight.shape
                k = min(m, n)
                U, _ = torch.linalg.qr(torch.randn(m, k))
                V, _ = torch.linalg.qr(torch.randn(n, k))
                s = torch.arange(1, k + 1, dtype=torch.float32) ** -(0.3 + 0.1 * (i % 7)) * 0.5
                lin.weight.copy_((U * s) @ V.T)
    else:
        model = models.load(model_arg)
    if allocation:
        mods = spectra.linear_modules(model)
        mat = pd.DataFrame(
            [dict(module=nm, block=b, kind=nm.rsplit(".", 1)[-1], rows=l.weight.shape[0], cols=l.weight.shape[1]) for b, nm, l in mods]
        )
        sv = {nm: torch.linalg.svdvals(l.weight.detach().float()) for _, nm, l in mods}
        df, info = lowrank.allocate(allocation, mat, sv, ratio)
        lowrank.compress(model, {r.module: int(r.kept_rank) for r in df.itertuples() if r.lrc})
    return model


class RssSampler:
    """Peak resident set size (MB) of this process while the block runs, sampled by a thread."""

    def __init__(self, every: float = 0.002):
        import threading

        self.every, self.peak, self._stop = every, 0.0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss_mb())
            time.sleep(self.every)

    def __enter__(self):
        self.before = self.rss_mb()
        self.peak = self.before
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.rss_mb())


def one(args, allocation, ratio, mode, device) -> dict:
    import gc

    import torch

    from compbench.lowrank import finetune as lrc_finetune

    gc.collect()
    model = build(args.model, args.synthetic, allocation, ratio).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    x = torch.randint(0, model.config.vocab_size, (args.batch, args.seq), device=device)
    row = {"params": n_params}
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with RssSampler() as mem:
        if mode == "infer":
            model.eval()
            row["trainable_params"] = 0
            row["state_mb"] = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
            with torch.no_grad():
                model(x)  # warm-up
                times = []
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    model(x)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - t0)
        else:
            spec = lrc_finetune.FTSpec(
                steps=1, batch_size=args.batch, lr=1e-4, warmup=1, weight_decay=0.0, eval_every=1, eval_windows=1, seed=0
            )
            model = lrc_finetune.MODES.get(mode)(model, spec)
            params = [p for p in model.parameters() if p.requires_grad]
            row["trainable_params"] = sum(p.numel() for p in params)
            row["state_mb"] = (
                sum(p.numel() * p.element_size() for p in model.parameters()) + sum(3 * p.numel() * p.element_size() for p in params)
            ) / 2**20  # weights + grads + 2 Adam moments
            opt = torch.optim.AdamW(params, lr=1e-4)
            model.train()
            times = []
            for i in range(args.reps + 1):
                t0 = time.perf_counter()
                loss = model(input_ids=x, labels=x).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i:
                    times.append(time.perf_counter() - t0)  # the first step (lazy optimizer state) is not timed
    times.sort()
    row["tokens_per_s"] = x.numel() / times[len(times) // 2]
    row["rss_growth_mb"] = mem.peak - mem.before
    if device.type == "cuda":
        row["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    row["device"] = str(device)
    del model
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "results" / "models" / "tiny"))
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "workflow" / "benchmarks" / "welore.csv"))
    args = ap.parse_args()
    import pandas as pd
    import torch

    from compbench import device as dev

    torch.set_num_threads(args.threads)
    device = dev.pick("auto")

    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    name = "synthetic-1024x4" if args.synthetic else Path(args.model).name
    rows = []
    for label, alloc, ratio in VARIANTS:
        for mode in MODES:
            if alloc is None and mode == "lrc":
                continue  # a dense model has no LRC
            load = os.getloadavg()[0]
            r = one(args, alloc, ratio, mode, device)
            row = {
                "date": datetime.date.today().isoformat(),
                "cpu": cpu,
                "cores": os.cpu_count(),
                "threads": args.threads,
                "load_1min_before": load,
                "model": name,
                "variant": label if alloc is None else f"{label}-{ratio}",
                "mode": mode,
                "batch": args.batch,
                "seq": args.seq,
                **r,
            }
            print(row, flush=True)
            rows.append(row)
    df = pd.DataFrame(rows)
    dense = df[(df.variant == "dense") & (df["mode"] == "infer")].iloc[0]
    df["params_vs_dense"] = df["params"] / dense["params"]
    for mode in MODES:
        base = df[(df.variant == "dense") & (df["mode"] == mode)]
        if len(base):
            sel = df["mode"] == mode
            df.loc[sel, "speedup_vs_dense"] = df.loc[sel, "tokens_per_s"] / base.tokens_per_s.iloc[0]
    out = Path(args.out)
    if out.exists():
        df = pd.concat([pd.read_csv(out), df], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(df.tail(len(rows)).to_string(index=False))


if __name__ == "__main__":
    main()

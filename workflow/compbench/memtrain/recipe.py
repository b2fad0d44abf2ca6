"""One training run of one variant, measured.

The recipe is :func:`compbench.pretrain.train` (seeded windows, cosine schedule
with warm-up, gradient clipping at 1, periodic validation) with this line's
optimizer plugged in through its hooks. Every step records the exact bytes by
category (:func:`compbench.memtrain.memory.account`) and the cumulative number
of SVDs; the run's summary keeps the peak of each category, the measured peak
RSS (whole process, and above the RSS before training), tokens/s and SVD time.
"""

from __future__ import annotations

import logging
import time

import torch

from compbench import pretrain
from compbench.memtrain import memory
from compbench.memtrain.methods import Context, build

log = logging.getLogger("compbench.memtrain")


def hyper_for(name: str, hyper: dict) -> dict:
    """A variant's hyper-parameters; ablations (``qgalore_nosr``) fall back to their base's (``qgalore``)."""
    return dict(hyper.get(name, hyper.get(name.split("_")[0], {})) or {})


def lr_for(name: str, lrs: dict) -> float:
    for key in (name, name.split("_")[0], "default"):
        if key in lrs:
            return float(lrs[key])
    raise KeyError(f"no learning rate for training variant {name!r}: set memtrain.lr.{name.split('_')[0]} or memtrain.lr.default")


def run(model, name: str, hyper: dict, ctx: Context, train_ids, val_ids, seq_len: int, spec: pretrain.TrainSpec, device):
    """Train ``model`` with variant ``name``; return (plain trained model, curve rows, summary dict, refresh rows)."""
    model.to(device)
    memory.reset_peak_rss()
    rss0 = memory.rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    setup = build(name, model, hyper, ctx)
    opt = setup.optimizer
    trainable = sum(p.numel() for g in opt.param_groups for p in g["params"])
    log.info("%s: %d trainable elements, info %s", name, trainable, setup.info)
    peak = dict.fromkeys(memory.CATEGORIES + ("total",), 0)
    t_train = [0.0]
    t_last = [time.perf_counter()]

    def on_step(step, m, o):
        acc = memory.account(m, o)
        for k in peak:
            peak[k] = max(peak[k], acc[k])
        projs = o.projectors() if hasattr(o, "projectors") else []
        now = time.perf_counter()
        t_train[0] += now - t_last[0]
        t_last[0] = now
        return {"bytes_total": acc["total"], "svd_count": sum(p.svd_count for p in projs)}

    grads = (lambda: opt.grads()) if hasattr(opt, "grads") else None
    t0 = time.perf_counter()
    curve = pretrain.train(setup.model, train_ids, val_ids, seq_len, spec, device, optimizer=opt, grad_tensors=grads, on_step=on_step)
    wall = time.perf_counter() - t0
    projs = opt.projectors() if hasattr(opt, "projectors") else []
    refresh = []
    for i, (pname, p) in enumerate(_projector_names(setup.model, opt)):
        for step, gap, sim in getattr(p, "history", []):
            refresh.append({"layer": pname.removesuffix(".qweight").removesuffix(".weight"), "step": step, "gap": gap, "similarity": sim})
    tokens = curve[-1]["tokens"]
    summary = {
        **{f"bytes_{k}": v for k, v in peak.items()},
        "trainable_elements": trainable,
        "peak_rss_mb": memory.peak_rss_mb(),
        "peak_rss_above_start_mb": (memory.peak_rss_mb() or 0) - (rss0 or 0),
        "svd_count": sum(p.svd_count for p in projs),
        "svd_seconds": sum(p.svd_seconds for p in projs),
        "tokens_per_s": tokens / wall,
        "train_wall_s": wall,
        "final_train_loss": curve[-1]["train_loss"],
        "final_val_loss": curve[-1]["val_loss"],
    }
    if device.type == "cuda":
        summary["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    plain = setup.finalize(setup.model)
    plain.eval()
    return plain, curve, summary, refresh


def _projector_names(model, opt):
    """(parameter name, projector) pairs, for the refresh history."""
    names = {}
    for n, p in model.named_parameters():
        names[id(p)] = n
    for n, b in model.named_buffers():
        names[id(b)] = n
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            if "projector" in st:
                yield names.get(id(p), "?"), st["projector"]

"""Pretraining the tiny LLaMA of the embedded default (AdamW, cosine schedule).

Seeded and deterministic on CPU: the same config and corpus give the same
weights. The training stream is the tokenised train split of every corpus source
concatenated and cut into ``seq_len`` windows; batches are drawn by a seeded
permutation of windows, epoch after epoch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

log = logging.getLogger("compbench.pretrain")


@dataclass
class TrainSpec:
    steps: int
    batch_size: int
    lr: float
    warmup: int
    weight_decay: float
    eval_every: int
    eval_windows: int
    seed: int
    autocast: str = "float32"  # "bfloat16": forward and loss under torch.autocast (mixed precision), weights and AdamW in fp32


AUTOCAST = {"float32": None, "bfloat16": torch.bfloat16}


def autocast_context(spec: TrainSpec, device: torch.device):
    """Mixed precision for the training forward pass: on a CPU with AVX-512 BF16 the tiny
    model's step is 1.53x faster (workflow/benchmarks/amp.csv); master weights, gradients'
    accumulation and the optimizer stay fp32, evaluation stays fp32."""
    if spec.autocast not in AUTOCAST:
        raise ValueError(f"pretrain.autocast={spec.autocast!r}; allowed: {sorted(AUTOCAST)}")
    dtype = AUTOCAST[spec.autocast]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def windows(ids: torch.Tensor, seq_len: int) -> torch.Tensor:
    n = ids.numel() // seq_len
    if n == 0:
        raise ValueError(f"corpus of {ids.numel()} tokens is shorter than one window of seq_len={seq_len}")
    return ids[: n * seq_len].view(n, seq_len)


def cosine_lr(step: int, spec: TrainSpec, min_ratio: float = 0.1) -> float:
    """Linear warm-up then cosine decay to ``min_ratio`` × peak."""
    if step < spec.warmup:
        return spec.lr * (step + 1) / spec.warmup
    progress = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    return spec.lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def window_nll(model, batch: torch.Tensor) -> tuple[float, int]:
    """Sum of next-token NLL over a batch of windows, and the number of predicted tokens."""
    logits = model(batch).logits[:, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1), reduction="sum")
    return float(nll), batch[:, 1:].numel()


def clip_(grads: list[torch.Tensor], max_norm: float) -> float:
    """``clip_grad_norm_`` over gradient tensors themselves (some live outside ``.grad``)."""
    grads = [g for g in grads if g is not None]
    if not grads:
        return 0.0
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach().float()) for g in grads]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.to(g.dtype))
    return float(total)


def train(
    model,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    seq_len: int,
    spec: TrainSpec,
    device: torch.device,
    optimizer=None,
    grad_tensors=None,
    on_step=None,
):
    """Train in place; return the curve as a list of dict rows.

    Hooks (all optional; the defaults are the spine's recipe): ``optimizer``, an
    optimizer over ``model``'s parameters, already on ``device`` (default AdamW,
    betas (0.9, 0.95), decay on matrices only); ``grad_tensors()``, the gradients to
    clip to norm 1 (default every ``.grad`` of the model); ``on_step(step, model,
    opt)``, called after each optimizer step, before gradients are cleared,
    returning extra columns for that step's row.
    """
    autocast_context(spec, device)  # a bad value fails before any work
    torch.manual_seed(spec.seed)
    train_w = windows(train_ids, seq_len)
    val_w = windows(val_ids, seq_len)[: spec.eval_windows].to(device)
    gen = torch.Generator().manual_seed(spec.seed)
    if optimizer is None:
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=spec.lr, betas=(0.9, 0.95)
        )
    opt = optimizer
    model.train().to(device)
    order = torch.randperm(train_w.size(0), generator=gen)
    pos = 0
    curve = []
    tokens = 0
    t0 = time.perf_counter()
    bar = tqdm(range(spec.steps), desc="pretrain", mininterval=5)
    for step in bar:
        if pos + spec.batch_size > order.numel():
            order = torch.randperm(train_w.size(0), generator=gen)
            pos = 0
        batch = train_w[order[pos : pos + spec.batch_size]].to(device)
        pos += spec.batch_size
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, spec)
        with autocast_context(spec, device):
            loss = model(batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_tensors is None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        else:
            clip_(grad_tensors(), 1.0)
        opt.step()
        tokens += batch.numel()
        row = {"step": step + 1, "tokens": tokens, "lr": opt.param_groups[0]["lr"], "train_loss": loss.item()}
        if on_step is not None:
            row.update(on_step(step, model, opt))
        if (step + 1) % spec.eval_every == 0 or step + 1 == spec.steps:
            model.eval()
            total, count = 0.0, 0
            for i in range(0, val_w.size(0), spec.batch_size):
                s, c = window_nll(model, val_w[i : i + spec.batch_size])
                total, count = total + s, count + c
            model.train()
            row["val_loss"] = total / count
            row["val_ppl"] = math.exp(row["val_loss"])
            row["tokens_per_s"] = tokens / (time.perf_counter() - t0)
            log.info("step %d train_loss %.4f val_ppl %.2f tok/s %.0f", step + 1, row["train_loss"], row["val_ppl"], row["tokens_per_s"])
            bar.set_postfix(val_ppl=f"{row['val_ppl']:.1f}")
        curve.append(row)
    model.eval()
    return curve

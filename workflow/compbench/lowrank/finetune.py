"""Fine-tuning a low-rank compressed model: full, LRC-only (WeLore), or LoRA (peft).

WeLore (arXiv:2407.11239, Sec. 4-5; reference ``welore_continual_finetune.py``)
fine-tunes only the low-rank components: every LRC is a factor pair A B (see
:mod:`compbench.lowrank.compress`) whose two factors train, while N-LRC dense weights are
frozen (``module.weight.requires_grad = False``). Modes, by config name
(:data:`MODES`):

* ``full``: every parameter of the compressed model trains (LRC factors, N-LRC
  weights, norms) — the paper's "full fine-tuning (LRCs and N-LRCs jointly)";
* ``lrc``: only the LRC factors train; everything else, norms included, is
  frozen (the reference leaves the RMSNorm gains trainable — < 0.1 % of the
  parameters; here they are frozen so that "everything else is bitwise
  unchanged" holds exactly);
* ``lora``: LoRA adapters (peft) on every linear inside the decoder blocks —
  the dense N-LRC linears and both factors of every LRC — with the compressed
  model frozen; merged back after training (``merge_and_unload``), so the
  result has the same factor structure as the input.

In every mode the token embeddings and the LM head stay frozen, as in the
reference. All modes see the same batches (same seed), hence the same token
budget: steps × batch_size × seq_len. The loop is the pretraining one (AdamW,
linear warm-up then cosine to 0.1 × lr, gradient clipping at 1).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from compbench.lowrank.compress import lowrank_modules
from compbench.pretrain import TrainSpec, cosine_lr, window_nll, windows
from compbench.provenance import peak_rss_mb
from compbench.registry import Registry

log = logging.getLogger("compbench.lowrank.finetune")

MODES: Registry = Registry("low-rank fine-tuning mode")


@dataclass
class FTSpec(TrainSpec):
    """The pretraining recipe's knobs plus LoRA's (the peer method)."""

    lora_r: int = 8
    lora_alpha: float = 16.0


def _frozen_io(model: nn.Module) -> set[int]:
    ids = {id(p) for p in model.get_input_embeddings().parameters()}
    out = model.get_output_embeddings()
    if out is not None:
        ids |= {id(p) for p in out.parameters()}
    return ids


@MODES.register("full")
def _full(model: nn.Module, spec: FTSpec) -> nn.Module:
    io = _frozen_io(model)
    for p in model.parameters():
        p.requires_grad_(id(p) not in io)
    return model


@MODES.register("lrc")
def _lrc(model: nn.Module, spec: FTSpec) -> nn.Module:
    lr = lowrank_modules(model)
    if not lr:
        raise ValueError("mode 'lrc' needs a low-rank model: it has no LowRankLinear (no LRC)")
    for p in model.parameters():
        p.requires_grad_(False)
    for mod in lr.values():
        for p in mod.parameters():
            p.requires_grad_(True)
    return model


@MODES.register("lora")
def _lora(model: nn.Module, spec: FTSpec) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    from compbench.blocks import linear_modules

    targets = [name for _, name, _ in linear_modules(model)]  # dense N-LRCs and both factors of each LRC
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = LoraConfig(r=spec.lora_r, lora_alpha=spec.lora_alpha, lora_dropout=0.0, target_modules=targets, bias="none")
    return get_peft_model(model, cfg)


def merge(model: nn.Module) -> nn.Module:
    """Back to a plain transformers model (LoRA merged into its linears)."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def count_params(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


@torch.no_grad()
def val_loss(model, val_w: torch.Tensor, batch_size: int) -> float:
    model.eval()
    total, count = 0.0, 0
    for i in range(0, val_w.size(0), batch_size):
        s, c = window_nll(model, val_w[i : i + batch_size])
        total, count = total + s, count + c
    model.train()
    return total / count


def finetune(model: nn.Module, mode: str, train_ids: torch.Tensor, val_ids: torch.Tensor, seq_len: int, spec: FTSpec, device):
    """Fine-tune ``model`` under ``mode``; return (merged model, curve rows, summary dict)."""
    prepare = MODES.get(mode)
    device = torch.device(device)
    torch.manual_seed(spec.seed)
    model = prepare(model.to(device), spec)
    trainable, total = count_params(model)
    if trainable == 0:
        raise ValueError(f"mode {mode!r} leaves no trainable parameter")
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": spec.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=spec.lr, betas=(0.9, 0.95))
    train_w = windows(train_ids, seq_len)
    val_w = windows(val_ids, seq_len)[: spec.eval_windows].to(device)
    gen = torch.Generator().manual_seed(spec.seed)
    order = torch.randperm(train_w.size(0), generator=gen)
    pos, tokens = 0, 0
    rss_before = peak_rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    curve = [{"step": 0, "tokens": 0, "lr": 0.0, "train_loss": math.nan, "val_loss": val_loss(model, val_w, spec.batch_size)}]
    model.train()
    t_train = 0.0
    bar = tqdm(range(spec.steps), desc=f"finetune {mode}", mininterval=5)
    for step in bar:
        if pos + spec.batch_size > order.numel():
            order = torch.randperm(train_w.size(0), generator=gen)
            pos = 0
        batch = train_w[order[pos : pos + spec.batch_size]].to(device)
        pos += spec.batch_size
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, spec)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t_train += time.perf_counter() - t0
        tokens += batch.numel()
        row = {"step": step + 1, "tokens": tokens, "lr": opt.param_groups[0]["lr"], "train_loss": loss.item()}
        if (step + 1) % spec.eval_every == 0 or step + 1 == spec.steps:
            row["val_loss"] = val_loss(model, val_w, spec.batch_size)
            log.info("%s step %d train_loss %.4f val_loss %.4f", mode, step + 1, row["train_loss"], row["val_loss"])
            bar.set_postfix(val_loss=f"{row['val_loss']:.3f}")
        curve.append(row)
    summary = {
        "mode": mode,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_fraction": trainable / total,
        "steps": spec.steps,
        "tokens": tokens,
        "train_s": t_train,
        "tokens_per_s": tokens / max(t_train, 1e-9),
        "peak_rss_mb": peak_rss_mb(),
        "rss_growth_mb": peak_rss_mb() - rss_before,  # process peak during training above the peak before it
        "optimizer_state_mb": sum(2 * p.numel() * p.element_size() for p in params) / 2**20,
        "val_loss_before": curve[0]["val_loss"],
        "val_loss_after": curve[-1]["val_loss"],
        "train_loss_last10": float(sum(r["train_loss"] for r in curve[1:][-10:]) / len(curve[1:][-10:])),
    }
    if device.type == "cuda":
        summary["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    model = merge(model).eval()
    return model, curve, summary


# ------------------------------------------------------------------------------ data

TRAIN_DATA: Registry = Registry("fine-tuning data set")


@TRAIN_DATA.register("tiny")
def _tiny_text(split: str, corpus_dir=None, sources=(), n_documents: int | None = None) -> str:
    """The embedded corpus (the pretraining distribution: continual fine-tuning, as WeLore does on C4)."""
    from compbench.corpus import read_split

    if corpus_dir is None or not sources:
        raise ValueError("fine-tuning data 'tiny' needs the corpus directory and its sources")
    return "\n\n".join(read_split(corpus_dir, s, split) for s in sources)


@TRAIN_DATA.register("c4")
def _c4_text(split: str, corpus_dir=None, sources=(), n_documents: int | None = None) -> str:
    """C4 (the paper's continual fine-tuning data): shard 0 of the train / validation split."""
    from datasets import load_dataset

    name = "train" if split == "train" else "validation"
    files = {name: f"en/c4-{name}.00000-of-{'01024' if name == 'train' else '00008'}.json.gz"}
    try:
        ds = load_dataset("allenai/c4", data_files=files, split=name)
    except Exception as e:  # offline / hub errors come in many types
        raise RuntimeError(f"could not load fine-tuning data 'allenai/c4' ({files[name]}) from the Hugging Face hub: {e}") from e
    n = int(n_documents or 20000)
    return "\n\n".join(ds[: n if name == "train" else max(1, n // 20)]["text"])

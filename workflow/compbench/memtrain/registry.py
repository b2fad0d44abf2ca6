"""Memory-efficient training: AdamW vs LoRA vs GaLore vs Q-GaLore (and ablations).

A training variant is a function ``build(model, hyper, ctx) -> Setup`` registered
in :data:`VARIANTS` under its config name: it may rewrite the model (LoRA
adapters, INT8 linears) and returns the optimizer and a ``finalize`` that turns
the trained model back into a plain Hugging Face model for saving and
evaluation. Every variant runs the same recipe (:mod:`compbench.pretrain`'s
windows, cosine schedule, evaluation) and the same AdamW arithmetic
(:class:`compbench.memtrain.galore.ProjectedAdamW`), so the variants differ only
in what they project, quantise or freeze.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from compbench.registry import Registry

VARIANTS: Registry = Registry("training variant")


@dataclass
class Context:
    """What every variant builder gets besides the model and its hyper-parameters."""

    lr: float
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    train_embeddings: bool = True
    seed: int = 0


@dataclass
class Setup:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    finalize: Callable[[nn.Module], nn.Module] = lambda m: m
    info: dict = field(default_factory=dict)


def decoder_linears(model: nn.Module) -> list[str]:
    """Names of the attention and MLP linears of every decoder block (GaLore's
    ``target_modules_list = ["attn", "mlp"]``); embeddings and lm_head are not targets."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and (".self_attn." in n or ".mlp." in n)]
    if not names:
        raise ValueError("model has no decoder linears named *.self_attn.* or *.mlp.* (a LLaMA-style model is expected)")
    return names


def set_trainable(model: nn.Module, train_embeddings: bool) -> None:
    """Everything trainable except, when ``train_embeddings`` is false, the input
    embeddings and the output head (the fine-tuning regime freezes them for every variant)."""
    frozen = set()
    if not train_embeddings:
        frozen = {id(p) for p in model.get_input_embeddings().parameters()}
        out = model.get_output_embeddings()
        if out is not None:
            frozen |= {id(p) for p in out.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) not in frozen)


def plain_groups(params, weight_decay: float) -> list[dict]:
    """AdamW groups as the spine's recipe makes them: decay on matrices, none on vectors."""
    params = [p for p in params if p.requires_grad and p.numel()]
    return [
        g
        for g in (
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        )
        if g["params"]
    ]

"""Baseline: full-parameter AdamW (no projection, float32 weights and moments)."""

from __future__ import annotations

from compbench.memtrain.galore import ProjectedAdamW
from compbench.memtrain.registry import VARIANTS, Context, Setup, plain_groups, set_trainable


@VARIANTS.register("adamw")
def build(model, hyper: dict, ctx: Context) -> Setup:
    if hyper:
        raise ValueError(f"training variant 'adamw' takes no hyper-parameters; got {sorted(hyper)}")
    set_trainable(model, ctx.train_embeddings)
    opt = ProjectedAdamW(plain_groups(model.parameters(), ctx.weight_decay), lr=ctx.lr, betas=ctx.betas, eps=ctx.eps)
    return Setup(model, opt)

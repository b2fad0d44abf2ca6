"""Q-GaLore variants: ``qgalore`` (INT8 weights + stochastic rounding, INT4 projections,
adaptive refresh) and its ablations ``qgalore_nosr`` (nearest rounding of the INT8
weights) and ``qgalore_fixed`` (refresh every ``update_proj_gap`` steps, as GaLore)."""

from __future__ import annotations

from functools import partial

import torch

from compbench.memtrain.galore import ProjectedAdamW
from compbench.memtrain.galore_variant import check
from compbench.memtrain.qgalore import AdaptiveProjector, dequantize_linears, quantize_linears
from compbench.memtrain.registry import VARIANTS, Context, Setup, decoder_linears, plain_groups, set_trainable

ALLOWED = {
    "rank",
    "update_proj_gap",
    "scale",
    "weight_bits",
    "weight_group_size",
    "proj_bits",
    "proj_group_size",
    "stochastic_round",
    "adaptive",
    "cos_threshold",
    "gamma_proj",
    "queue_size",
}


def build(model, hyper: dict, ctx: Context, **override) -> Setup:
    check(hyper, ALLOWED, "qgalore")
    h = {
        "rank": 128,
        "update_proj_gap": 200,
        "scale": 0.25,
        "weight_bits": 8,
        "weight_group_size": 256,
        "proj_bits": 4,
        "proj_group_size": 256,
        "stochastic_round": True,
        "adaptive": True,
        "cos_threshold": 0.4,
        "gamma_proj": 2,
        "queue_size": 5,
    }
    h.update(hyper)
    h.update(override)
    set_trainable(model, ctx.train_embeddings)
    gen = torch.Generator().manual_seed(ctx.seed)
    qmods = quantize_linears(
        model,
        decoder_linears(model),
        bits=h["weight_bits"],
        group_size=h["weight_group_size"],
        stochastic_round=bool(h["stochastic_round"]),
        generator=gen,
    )
    rest = [p for n, p in model.named_parameters() if not n.endswith(".anchor")]
    groups = plain_groups(rest, ctx.weight_decay)
    make = partial(_projector, h)
    groups.append(
        {
            "params": [q.qweight for q in qmods.values()],
            "weight_decay": ctx.weight_decay,
            "rank": int(h["rank"]),
            "update_proj_gap": int(h["update_proj_gap"]),
            "scale": float(h["scale"]),
            "make_projector": make,
        }
    )
    opt = ProjectedAdamW(groups, lr=ctx.lr, betas=ctx.betas, eps=ctx.eps, qlinears={id(q.qweight): q for q in qmods.values()})

    def finalize(m):
        dequantize_linears(m)
        return m

    return Setup(model, opt, finalize=finalize, info={"hyper": h, "targets": len(qmods)})


def _projector(h, group):
    return AdaptiveProjector(
        group["rank"],
        update_proj_gap=group["update_proj_gap"],
        scale=group["scale"],
        proj_bits=int(h["proj_bits"]),
        proj_group_size=int(h["proj_group_size"]),
        adaptive=bool(h["adaptive"]),
        cos_threshold=float(h["cos_threshold"]),
        gamma_proj=float(h["gamma_proj"]),
        queue_size=int(h["queue_size"]),
    )


VARIANTS.register("qgalore")(build)
VARIANTS.register("qgalore_nosr")(partial(build, stochastic_round=False))
VARIANTS.register("qgalore_fixed")(partial(build, adaptive=False))

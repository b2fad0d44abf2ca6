"""Unlearning by gradient difference (GD; Liu et al. 2022, "Continual learning
and private unlearning"; one of the composability paper's unlearners): ascend
the forget NLL while descending the retain NLL,
L = −NLL(forget) + retain_weight · NLL(retain)."""

from __future__ import annotations

import random

import torch

from compbench.compose.interventions.registry import register
from compbench.compose.interventions.training import train_params
from compbench.compose.interventions.unlearn_common import batches, lm_nll, mean_nll, params_of


@register("gd", "unlearn")
def gd(
    model,
    ctx,
    steps: int = 30,
    lr: float = 1e-4,
    batch_size: int = 16,
    seq_len: int = 64,
    retain_weight: float = 1.0,
    max_loss: float | None = 15.0,
    layers: list[int] | None = None,
    seed: int = 0,
) -> dict:
    torch.manual_seed(seed)
    dev, tok = ctx.device, ctx.tokenizer
    before = mean_nll(model, tok, ctx.data.forget_texts, dev, seq_len)
    forget = batches(tok, ctx.data.forget_texts, batch_size, seq_len, random.Random(seed))
    retain = batches(tok, ctx.data.retain_texts, batch_size, seq_len, random.Random(seed + 1))

    def loss_fn():
        f_ids, f_att = next(forget)
        r_ids, r_att = next(retain)
        f = lm_nll(model, f_ids.to(dev), f_att.to(dev))
        r = lm_nll(model, r_ids.to(dev), r_att.to(dev))
        return -f + retain_weight * r, {"forget_nll_batch": f.detach(), "retain_nll_batch": r.detach()}

    info = train_params(
        model, params_of(model, layers), steps, lr, loss_fn, stop=(lambda i: i["forget_nll_batch"] > max_loss) if max_loss else None
    )
    return {**info, "forget_nll_before": before, "forget_nll_after": mean_nll(model, tok, ctx.data.forget_texts, dev, seq_len)}

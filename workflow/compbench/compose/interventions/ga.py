"""Unlearning by gradient ascent (GA; Jang et al. 2023, one of the composability
paper's unlearners): maximise the NLL of the forget texts, L = −NLL(forget),
stopping once the forget NLL exceeds ``max_loss`` (unbounded ascent destroys the
model; the usual practice is a step or loss budget)."""

from __future__ import annotations

import random

import torch

from compbench.compose.interventions.registry import register
from compbench.compose.interventions.training import train_params
from compbench.compose.interventions.unlearn_common import batches, lm_nll, mean_nll, params_of


@register("ga", "unlearn")
def ga(
    model,
    ctx,
    steps: int = 30,
    lr: float = 1e-4,
    batch_size: int = 16,
    seq_len: int = 64,
    max_loss: float | None = 15.0,
    layers: list[int] | None = None,
    seed: int = 0,
) -> dict:
    torch.manual_seed(seed)
    dev, tok = ctx.device, ctx.tokenizer
    before = mean_nll(model, tok, ctx.data.forget_texts, dev, seq_len)
    forget = batches(tok, ctx.data.forget_texts, batch_size, seq_len, random.Random(seed))

    def loss_fn():
        ids, att = next(forget)
        nll = lm_nll(model, ids.to(dev), att.to(dev))
        return -nll, {"forget_nll_batch": nll.detach()}

    info = train_params(
        model, params_of(model, layers), steps, lr, loss_fn, stop=(lambda i: i["forget_nll_batch"] > max_loss) if max_loss else None
    )
    return {**info, "forget_nll_before": before, "forget_nll_after": mean_nll(model, tok, ctx.data.forget_texts, dev, seq_len)}

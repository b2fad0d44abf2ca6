"""The optimisation loop the editing and unlearning methods share: AdamW (no
weight decay, i.e. Adam) on ``loss_fn()`` over the given parameters only, every
other parameter frozen for the duration and its ``requires_grad`` restored after."""

from __future__ import annotations

import torch


def train_params(model, params, steps: int, lr: float, loss_fn, after_step=None, stop=None) -> dict:
    """``loss_fn()`` returns ``(loss, info)``; ``after_step()`` runs after each
    optimiser step (e.g. a norm constraint); ``stop(info)`` may end early.
    Returns the steps run, the first step's loss and the last step's info."""
    keep = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    done, first, info = 0, None, {}
    try:
        for done in range(1, steps + 1):
            loss, info = loss_fn()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            first = float(loss.detach()) if first is None else first
            if stop is not None and stop(info):
                break
    finally:
        model.eval()
        for p, r in keep.items():
            p.requires_grad_(r)
    return {"steps_run": done, "first_loss": first, **{k: float(v) for k, v in info.items()}}

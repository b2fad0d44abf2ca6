"""What the unlearning methods share: the forget / retain texts as padded token
batches, and the language-modelling NLL over their real tokens."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F


def batches(tokenizer, texts: list[str], batch_size: int, seq_len: int, rng: random.Random):
    """An endless stream of right-padded batches (ids, attention) of ``batch_size``
    texts drawn without replacement (reshuffled each pass), cut to ``seq_len`` tokens."""
    if not texts:
        raise ValueError("unlearning needs a non-empty text set")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    enc = [tokenizer(t)["input_ids"][:seq_len] for t in texts]
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            more = list(range(len(enc)))
            rng.shuffle(more)
            order += more
        pick, order = order[:batch_size], order[batch_size:]
        n = max(len(enc[i]) for i in pick)
        ids = torch.full((len(pick), n), pad, dtype=torch.long)
        att = torch.zeros((len(pick), n), dtype=torch.long)
        for r, i in enumerate(pick):
            ids[r, : len(enc[i])] = torch.tensor(enc[i])
            att[r, : len(enc[i])] = 1
        yield ids, att


def lm_nll(model, ids, att):
    """Mean next-token NLL over the real (unpadded) tokens."""
    logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
    tgt = ids[:, 1:].masked_fill(att[:, 1:] == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=-100)


@torch.no_grad()
def mean_nll(model, tokenizer, texts: list[str], device, seq_len: int = 64, batch_size: int = 32) -> float:
    """NLL over every text once (for logging and tests)."""
    it = batches(tokenizer, texts, min(batch_size, len(texts)), seq_len, random.Random(0))
    total, n = 0.0, 0
    for _ in range(0, len(texts), batch_size):
        ids, att = next(it)
        total += float(lm_nll(model, ids.to(device), att.to(device))) * ids.shape[0]
        n += ids.shape[0]
    return total / n


def params_of(model, layers: list[int] | None):
    """All parameters (``layers`` None), else the MLP weights of the given blocks."""
    if layers is None:
        return [p for p in model.parameters()]
    n = len(model.model.layers)
    bad = [l for l in layers if not (isinstance(l, int) and 0 <= l < n)]
    if bad:
        raise ValueError(f"unlearning layers {list(layers)}: {bad} out of range; allowed: 0..{n - 1}")
    return [p for l in layers for p in model.model.layers[l].mlp.parameters()]


def train(model, params, steps: int, lr: float, loss_fn, stop=None) -> dict:
    """AdamW on ``loss_fn()`` over ``params`` only; ``stop(info)`` may end early."""
    keep = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    done = 0
    info: dict = {}
    try:
        for done in range(1, steps + 1):
            loss, info = loss_fn()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if stop is not None and stop(info):
                break
    finally:
        model.eval()
        for p, r in keep.items():
            p.requires_grad_(r)
    return {"steps_run": done, **{k: float(v) for k, v in info.items()}}

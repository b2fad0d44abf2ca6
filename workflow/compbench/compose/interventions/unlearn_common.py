"""What the unlearning methods share: the forget / retain texts as padded token
batches, and the language-modelling NLL over their real tokens."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F


def encode(tokenizer, texts: list[str], seq_len: int) -> list[list[int]]:
    if not texts:
        raise ValueError("unlearning needs a non-empty text set")
    return [tokenizer(t)["input_ids"][:seq_len] for t in texts]


def pad(tokenizer, seqs: list[list[int]]):
    """Right-padded ``(ids, attention)`` of token sequences."""
    fill = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    n = max(map(len, seqs))
    ids = torch.full((len(seqs), n), fill, dtype=torch.long)
    att = torch.zeros((len(seqs), n), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s)
        att[r, : len(s)] = 1
    return ids, att


def batches(tokenizer, texts: list[str], batch_size: int, seq_len: int, rng: random.Random):
    """An endless stream of right-padded batches (ids, attention) of ``batch_size``
    texts drawn without replacement (reshuffled each pass), cut to ``seq_len`` tokens."""
    enc = encode(tokenizer, texts, seq_len)
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            more = list(range(len(enc)))
            rng.shuffle(more)
            order += more
        pick, order = order[:batch_size], order[batch_size:]
        yield pad(tokenizer, [enc[i] for i in pick])


def lm_nll(model, ids, att):
    """Mean next-token NLL over the real (unpadded) tokens."""
    logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
    tgt = ids[:, 1:].masked_fill(att[:, 1:] == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=-100)


@torch.no_grad()
def mean_nll(model, tokenizer, texts: list[str], device, seq_len: int = 64, batch_size: int = 32) -> float:
    """Mean NLL per text, every text exactly once, in order (for logging and tests)."""
    enc = encode(tokenizer, texts, seq_len)
    total = 0.0
    for i in range(0, len(enc), batch_size):
        ids, att = pad(tokenizer, enc[i : i + batch_size])
        total += float(lm_nll(model, ids.to(device), att.to(device))) * ids.shape[0]
    return total / len(enc)


def params_of(model, layers: list[int] | None, names: list[str] | None = None):
    """All parameters (``layers`` None); else, of each given block, the parameters
    named in ``names`` (relative to the block, e.g. ``mlp.down_proj.weight``), or all
    its MLP weights when ``names`` is None."""
    if layers is None:
        return [p for p in model.parameters()]
    n = len(model.model.layers)
    bad = [l for l in layers if not (isinstance(l, int) and 0 <= l < n)]
    if bad:
        raise ValueError(f"unlearning layers {list(layers)}: {bad} out of range; allowed: 0..{n - 1}")
    if names is None:
        return [p for l in layers for p in model.model.layers[l].mlp.parameters()]
    allowed = dict(model.model.layers[0].named_parameters())
    unknown = [s for s in names if s not in allowed]
    if unknown or not names:
        raise ValueError(
            f"unlearning params {list(names)}: {unknown or 'empty'} not parameters of a decoder block; allowed: {', '.join(allowed)}"
        )
    return [dict(model.model.layers[l].named_parameters())[s] for l in layers for s in names]

"""Encoding and metrics of knowledge editing (as EasyEdit computes them for
zsRE, which the composability paper uses), and multiple-choice accuracy.

* edit success / generalisation: teacher-forced token accuracy of the new target
  after the edit prompt / after each paraphrase (argmax == target token, averaged
  over the target's tokens, then over requests);
* locality: token-level F1 (SQuAD-style bag-of-tokens overlap) between the
  unedited and the edited model's teacher-forced argmax predictions on the
  answers of unrelated probes;
* multiple choice: the choice with the highest summed log-likelihood of
  ``" " + choice`` after the prompt.

Prompts are encoded with the tokenizer's BOS, targets (which carry their
leading space) without special tokens, and concatenated.
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F


def encode_pairs(tokenizer, prompts: list[str], targets: list[str]):
    """Right-padded ``ids``, ``attention`` mask and ``labels`` (-100 except at the
    target tokens), so ``logits[:, :-1]`` predicts ``labels[:, 1:]``."""
    seqs, labs = [], []
    for p, t in zip(prompts, targets):
        pi = tokenizer(p)["input_ids"]
        ti = tokenizer(t, add_special_tokens=False)["input_ids"]
        if not ti:
            raise ValueError(f"target {t!r} of prompt {p!r} encodes to no token")
        seqs.append(pi + ti)
        labs.append([-100] * len(pi) + ti)
    n = max(map(len, seqs))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(seqs), n), pad, dtype=torch.long)
    att = torch.zeros((len(seqs), n), dtype=torch.long)
    labels = torch.full((len(seqs), n), -100, dtype=torch.long)
    for i, (s, l) in enumerate(zip(seqs, labs)):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
        labels[i, : len(l)] = torch.tensor(l)
    return ids, att, labels


def target_nll(model, ids, att, labels, reduction: str = "mean"):
    """NLL of the target tokens only (teacher forcing): the editing loss."""
    logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
    lab = labels[:, 1:]
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), lab.reshape(-1), ignore_index=-100, reduction="none")
    loss = loss.view(lab.shape)
    mask = lab != -100
    if reduction == "sum_per_row":
        return (loss * mask).sum(1)
    return (loss * mask).sum() / mask.sum()


@torch.no_grad()
def _argmax_at_targets(model, tokenizer, prompts, targets, device, batch_size: int = 32):
    """Per pair: (predicted ids, target ids) at the target positions."""
    out = []
    for i in range(0, len(prompts), batch_size):
        ids, att, labels = encode_pairs(tokenizer, prompts[i : i + batch_size], targets[i : i + batch_size])
        logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits[:, :-1]
        pred = logits.argmax(-1).cpu()
        lab = labels[:, 1:]
        for r in range(ids.shape[0]):
            m = lab[r] != -100
            out.append((pred[r][m].tolist(), lab[r][m].tolist()))
    return out


def token_accuracy(model, tokenizer, prompts: list[str], targets: list[str], device) -> list[float]:
    """Per pair, the fraction of target tokens the model predicts (argmax, teacher forced)."""
    return [sum(p == t for p, t in zip(pr, ta)) / len(ta) for pr, ta in _argmax_at_targets(model, tokenizer, prompts, targets, device)]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def edit_success_items(model, tokenizer, edits, device) -> list[float]:
    """Each edit's success: the fraction of its new target's tokens the model predicts."""
    return token_accuracy(model, tokenizer, [e.prompt for e in edits], [e.target_new for e in edits], device)


def edit_success(model, tokenizer, edits, device) -> float:
    return _mean(edit_success_items(model, tokenizer, edits, device))


def generalisation(model, tokenizer, edits, device) -> float:
    pairs = [(p, e.target_new) for e in edits for p in e.paraphrases]
    if not pairs:
        return float("nan")
    return _mean(token_accuracy(model, tokenizer, [p for p, _ in pairs], [t for _, t in pairs], device))


def predictions(model, tokenizer, probes, device) -> list[list[int]]:
    """Teacher-forced argmax token ids at the answer positions of each probe."""
    return [pr for pr, _ in _argmax_at_targets(model, tokenizer, [p.prompt for p in probes], [p.answer for p in probes], device)]


def token_f1(pred: list[int], ref: list[int]) -> float:
    """SQuAD-style F1 of two token bags."""
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred and not ref:
        return 1.0
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(ref)
    return 2 * p * r / (p + r)


def locality(pre: list[list[int]], post: list[list[int]]) -> float:
    """Mean token F1 between the unedited and the edited model's predictions."""
    if len(pre) != len(post):
        raise ValueError(f"locality: {len(pre)} predictions before, {len(post)} after")
    return _mean([token_f1(b, a) for a, b in zip(pre, post)])


@torch.no_grad()
def choice_loglik(model, tokenizer, items, device, batch_size: int = 64) -> list[list[float]]:
    prompts, targets, index = [], [], []
    for i, q in enumerate(items):
        for c in q.choices:
            prompts.append(q.prompt)
            targets.append(" " + c)
            index.append(i)
    scores: list[list[float]] = [[] for _ in items]
    for s in range(0, len(prompts), batch_size):
        ids, att, labels = encode_pairs(tokenizer, prompts[s : s + batch_size], targets[s : s + batch_size])
        nll = target_nll(model, ids.to(device), att.to(device), labels.to(device), reduction="sum_per_row")
        for k, v in enumerate(nll.cpu().tolist()):
            scores[index[s + k]].append(-v)
    return scores


def mcq_accuracy(model, tokenizer, items, device) -> float:
    if not items:
        return float("nan")
    scores = choice_loglik(model, tokenizer, items, device)
    return _mean([float(max(range(len(sc)), key=sc.__getitem__) == q.label) for sc, q in zip(scores, items)])

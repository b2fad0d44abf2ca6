"""One training recipe for every speech variant: Conformer-CTC, AdamW, warm-up + cosine LR,
SpecAugment, per-utterance CTC loss normalised by target length; greedy CTC decoding and
WER/CER on dev and test after training.

A variant is a :class:`Variant` subclass registered in ``VARIANTS`` under its config name; it
may change the model before training (LR-SMS, MSRS), choose the training items of each epoch
(DDP-ASR) and add a loss term / react after each step (MSRS).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from compbench.registry import Registry
from compbench.speech import ddp, features, lowrank, msrs
from compbench.speech import model as M

VARIANTS: Registry = Registry("speech training variant")
LOG = logging.getLogger("compbench.speech")


@dataclass
class Data:
    """Features and targets of every utterance (manifest order) and the split of each."""

    feats: list[torch.Tensor]
    texts: list[str]
    splits: list[str]
    vocab: list[str]
    units: str
    hop_s: float
    targets: list[list[int]] = field(default_factory=list)

    def __post_init__(self):
        if not self.targets:
            train_syms = set(self.vocab)
            self.targets = [
                features.encode(t, self.vocab, self.units) if s == "train" or set(_pieces(t, self.units)) <= train_syms else []
                for t, s in zip(self.texts, self.splits)
            ]

    def index(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.splits) if s == split]

    @classmethod
    def from_tensors(cls, tensors: dict, manifest: pd.DataFrame, units: str, hop_s: float) -> "Data":
        off = tensors["offsets"].tolist()
        if len(off) != len(manifest) + 1:
            raise ValueError(f"features hold {len(off) - 1} utterances, manifest {len(manifest)}")
        feats = [tensors["feats"][off[i] : off[i + 1]] for i in range(len(manifest))]
        texts = manifest["text"].astype(str).tolist()
        splits = manifest["split"].tolist()
        vocab = features.vocabulary([t for t, s in zip(texts, splits) if s == "train"], units)
        return cls(feats, texts, splits, vocab, units, hop_s)


def _pieces(text: str, units: str):
    return text.split() if units == "word" else list(text)


# ---------------------------------------------------------------- variants
class Variant:
    """The dense recipe; subclasses override hooks."""

    def __init__(self, run: dict, n_layers: int):
        self.run = run
        self.info: dict = {}

    def prepare(self, model: torch.nn.Module) -> None:
        pass

    def examples(self, epoch: int, data: Data, train_idx: list[int]) -> list[tuple[int, list | None]]:
        """(utterance, frame ranges or None = whole utterance) trained on in this epoch."""
        return [(u, None) for u in train_idx]

    def observe(self, batch: list, per_utt_loss: torch.Tensor, log_probs: torch.Tensor, out_lens: torch.Tensor) -> None:
        pass

    def loss_extra(self, model) -> torch.Tensor | None:
        return None

    def after_step(self, step: int, model, curve_row: dict) -> None:
        pass

    def effective_params(self, model) -> int:
        return count_params(model)


@VARIANTS.register("dense")
class Dense(Variant):
    pass


@VARIANTS.register("lrsms")
class LRSMS(Variant):
    def prepare(self, model):
        ranks = lowrank.factorize(model, self.run["attn"], self.run["ff"], self.run["min_rank"], self.run["init"])
        self.info["ranks"] = ranks


@VARIANTS.register("ddp")
class DDP(Variant):
    """DDP-ASR: see compbench.speech.ddp."""

    def __init__(self, run, n_layers):
        super().__init__(run, n_layers)
        self.selector = None
        self.items: list[tuple[int, int, int]] = []  # (utterance, start, end)
        self.scores = None
        self.kept_log: list[np.ndarray] = []

    def _build_items(self, data, train_idx):
        if self.run["granularity"] == "utterance":
            self.items = [(u, 0, len(data.feats[u])) for u in train_idx]
        elif self.run["granularity"] == "segment":
            seg = max(1, int(round(self.run["segment_s"] / data.hop_s)))
            self.items = [(u, a, b) for u in train_idx for a, b in ddp.segments(len(data.feats[u]), seg)]
        else:
            raise ValueError(f"speech.variants.ddp.granularity={self.run['granularity']!r}; allowed: utterance, segment")
        self.item_of = {(u, a): i for i, (u, a, b) in enumerate(self.items)}
        self.scores = np.full(len(self.items), np.nan)
        self.selector = ddp.Selector(
            len(self.items), self.run["fraction"], self.run["rule"], self.run["epsilon"], self.run["max_skip"], self.run["seed"]
        )

    def examples(self, epoch, data, train_idx):
        if self.selector is None:
            self._build_items(data, train_idx)
        r = self.run
        if epoch < r["warmup_epochs"]:
            keep = np.arange(len(self.items))
        elif (epoch - r["warmup_epochs"]) % r["every_epochs"] == 0 or not self.kept_log:
            if r["rescore"] == "all":
                self.rescore_needed = True
                return []  # the trainer rescores, then calls examples() again
            keep = self.selector.select(self.scores)
        else:
            keep = self.kept_log[-1]
        self.kept_log.append(keep)
        self.info["kept_items"] = int(len(keep))
        self.info["n_items"] = len(self.items)
        if r["granularity"] == "utterance":
            return [(self.items[i][0], None) for i in keep]
        by_utt: dict[int, list] = {}
        for i in keep:
            u, a, b = self.items[i]
            by_utt.setdefault(u, []).append((a, b))
        return [(u, sorted(rs)) for u, rs in by_utt.items()]

    def select_after_rescore(self):
        keep = self.selector.select(self.scores)
        return keep

    def observe(self, batch, per_utt_loss, log_probs, out_lens):
        if self.run["granularity"] == "utterance":
            for (u, _), l in zip(batch, per_utt_loss.detach().cpu().tolist()):
                self.scores[self.item_of[(u, 0)]] = l
            return
        # segment: mean per-frame uncertainty -max_c log p(c | t) over the segment's output frames
        unc = -log_probs.detach().max(-1).values.cpu()  # B, T'
        for b, (u, ranges) in enumerate(batch):
            pos, n_out = 0, int(out_lens[b])
            for a, e in ranges:
                lo, hi = pos // 4, min(n_out, (pos + (e - a)) // 4)
                val = float(unc[b, lo:hi].mean()) if hi > lo else float(unc[b, :n_out].mean())
                self.scores[self.item_of[(u, a)]] = val
                pos += e - a


@VARIANTS.register("msrs")
class MSRS(Variant):
    def __init__(self, run, n_layers):
        super().__init__(run, n_layers)
        self.detector = msrs.StabilityDetector(run["flip_threshold"], run["patience"], run["min_steps"])
        self.switched_at = None

    def prepare(self, model):
        msrs.attach(model, self.run["temperature"], self.run["init_density"])

    def loss_extra(self, model):
        if self.switched_at is not None:
            return None
        return self.run["lam"] * msrs.regulariser(model)

    def after_step(self, step, model, row):
        if self.switched_at is not None or step % self.run["check_every"]:
            return
        flips = self.detector.update(step, msrs.binary_vector(model))
        row["density"] = msrs.density(model)
        row["flips"] = flips
        if self.detector.fired_at is not None:
            self.info["density_at_switch"] = row["density"]
            self.info["n_masked"] = int(msrs.binary_vector(model).numel())
            self.info["kept_masked"] = int(msrs.binary_vector(model).sum())
            msrs.switch(model, self.run["mode"])
            self.switched_at = step
            self.info["stable_step"] = step
            LOG.info("MSRS: mask stable at step %d (density %.3f); continuing %s", step, row["density"], self.run["mode"])

    def effective_params(self, model):
        total = count_params(model)
        if self.switched_at is None:  # never stabilised: the binary mask decides
            ms = msrs.masked(model)
            return total - sum(int((~m.binary()).sum()) for m in ms)
        if self.run["mode"] == "sparse":
            return total - (self.info["n_masked"] - self.info["kept_masked"])
        return total


def count_params(model) -> int:
    """Trainable weights of the network (MSRS scores are not network weights)."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.endswith("scores"))


# ---------------------------------------------------------------- loop
def _batch(data: Data, batch: list, device):
    xs = []
    for u, ranges in batch:
        f = data.feats[u]
        xs.append(f if ranges is None else torch.cat([f[a:b] for a, b in ranges]))
    lens = torch.tensor([len(x) for x in xs])
    x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
    ys = [torch.tensor(data.targets[u]) for u, _ in batch]
    ylens = torch.tensor([len(y) for y in ys])
    return x.to(device), lens.to(device), torch.cat(ys).to(device), ylens.to(device)


def lr_at(progress: float, step: int, base: float, warmup: int, floor: float = 0.05) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from ``base`` to ``floor * base`` over the
    training progress (epochs done / epochs planned)."""
    w = min(1.0, (step + 1) / max(1, warmup))
    return base * w * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def evaluate(model, data: Data, idx: list[int], device, batch_size: int = 32) -> tuple[dict, list[str]]:
    from compbench.speech.wer import error_rates

    model.eval()
    hyps = []
    order = sorted(idx, key=lambda u: len(data.feats[u]))
    for i in range(0, len(order), batch_size):
        b = [(u, None) for u in order[i : i + batch_size]]
        x, lens, _, _ = _batch(data, b, device) if all(data.targets[u] for u, _ in b) else _feats_only(data, b, device)
        lp, ol = model(x, lens)
        hyps += [features.decode(h, data.vocab, data.units) for h in M.greedy_decode(lp, ol)]
    by_id = dict(zip(order, hyps))
    hyps = [by_id[u] for u in idx]
    return error_rates([data.texts[u] for u in idx], hyps), hyps


def _feats_only(data, batch, device):
    xs = [data.feats[u] for u, _ in batch]
    return (torch.nn.utils.rnn.pad_sequence(xs, batch_first=True).to(device), torch.tensor([len(x) for x in xs]).to(device), None, None)


def train(run: dict, sp: dict, data: Data, device, log=LOG) -> dict:
    """Train one run (``run`` = resolved spec from compbench.speech.grid) and evaluate it.
    Returns {"model", "metrics" (dict), "curve" (DataFrame), "info" (dict), "hyps"}."""
    tr = sp["train"]
    torch.manual_seed(tr["seed"])
    gen = np.random.default_rng(tr["seed"])
    net = M.build(sp["model"], data.feats[0].shape[1], len(data.vocab))
    variant = VARIANTS.get(run["variant"])(run, sp["model"]["num_layers"])
    variant.prepare(net)
    net.to(device)
    params_total = count_params(net)
    # MSRS scores get their own learning rate (Adam moves a parameter ~lr per step, so the
    # weights' lr would take thousands of steps to flip a score) and no weight decay.
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if not n.endswith("scores")], "scale": 1.0, "weight_decay": tr["weight_decay"]}]
    scores = [p for n, p in named if n.endswith("scores")]
    if scores:
        groups.append({"params": scores, "scale": run["score_lr"] / tr["lr"], "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=tr["lr"])
    train_idx = data.index("train")
    rows, step, audio_s, rescore_s = [], 0, 0.0, 0.0
    t0 = time.perf_counter()
    for epoch in range(tr["epochs"]):
        ex = variant.examples(epoch, data, train_idx)
        if getattr(variant, "rescore_needed", False):
            rescore_s += _rescore(net, variant, data, device, tr["batch_size"])
            variant.rescore_needed = False
            keep = variant.select_after_rescore()
            variant.kept_log.append(keep)
            variant.info["kept_items"] = int(len(keep))
            ex = [(variant.items[i][0], None) for i in keep] if run["granularity"] == "utterance" else _segments_of(variant, keep)
        gen.shuffle(ex)
        nb = math.ceil(len(ex) / tr["batch_size"])
        net.train()
        for bi in range(nb):
            batch = ex[bi * tr["batch_size"] : (bi + 1) * tr["batch_size"]]
            x, lens, y, ylens = _batch(data, batch, device)
            x = features.spec_augment(x, tr["specaugment"])
            lp, ol = net(x, lens)
            per = F.ctc_loss(lp.transpose(0, 1), y, ol, ylens, blank=0, reduction="none", zero_infinity=True) / ylens.clamp(min=1)
            loss = per.mean()
            extra = variant.loss_extra(net)
            total = loss + extra if extra is not None else loss
            lr = lr_at((epoch + bi / nb) / tr["epochs"], step, tr["lr"], tr["warmup_steps"])
            for g in opt.param_groups:
                g["lr"] = lr * g["scale"]
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), tr["grad_clip"])
            opt.step()
            variant.observe(batch, per, lp, ol)
            audio_s += float(lens.sum()) * data.hop_s
            step += 1
            row = {"step": step, "epoch": epoch, "loss": loss.item(), "lr": lr, "audio_s": audio_s, "wall_s": time.perf_counter() - t0}
            if extra is not None:
                row["regulariser"] = extra.item()
            variant.after_step(step, net, row)
            rows.append(row)
        log.info(
            "epoch %d: %d examples, %d steps, loss %.3f, %.1f s",
            epoch,
            len(ex),
            nb,
            np.mean([r["loss"] for r in rows[-nb:]]) if nb else float("nan"),
            time.perf_counter() - t0,
        )
    train_s = time.perf_counter() - t0
    metrics = {
        "params": params_total,
        "params_effective": variant.effective_params(net),
        "train_s": round(train_s, 3),
        "audio_s": round(audio_s, 2),
        "rescore_audio_s": round(rescore_s, 2),
        "steps": step,
        "full_epoch_audio_s": round(sum(len(data.feats[u]) for u in train_idx) * data.hop_s, 2),
    }
    hyps = {}
    for split in ("dev", "test"):
        idx = data.index(split)
        if idx:
            er, hyps[split] = evaluate(net, data, idx, device)
            metrics.update({f"{split}_{k}": v for k, v in er.items()})
    return {"model": net, "metrics": metrics, "curve": pd.DataFrame(rows), "info": variant.info, "hyps": hyps}


def _segments_of(variant, keep):
    by_utt: dict[int, list] = {}
    for i in keep:
        u, a, b = variant.items[i]
        by_utt.setdefault(u, []).append((a, b))
    return [(u, sorted(rs)) for u, rs in by_utt.items()]


@torch.no_grad()
def _rescore(net, variant, data, device, batch_size) -> float:
    """DDP ``rescore: all``: a forward pass over every training item to refresh its score."""
    net.eval()
    seconds = 0.0
    if variant.run["granularity"] == "utterance":
        ex = [(u, None) for u, _, _ in variant.items]
    else:
        ex = _segments_of(variant, range(len(variant.items)))
    for i in range(0, len(ex), batch_size):
        batch = ex[i : i + batch_size]
        x, lens, y, ylens = _batch(data, batch, device)
        lp, ol = net(x, lens)
        per = F.ctc_loss(lp.transpose(0, 1), y, ol, ylens, blank=0, reduction="none", zero_infinity=True) / ylens.clamp(min=1)
        variant.observe(batch, per, lp, ol)
        seconds += float(lens.sum()) * data.hop_s
    net.train()
    return seconds

"""One training recipe for every speech variant: Conformer-CTC, AdamW, warm-up + cosine LR,
SpecAugment, per-utterance CTC loss normalised by target length; greedy CTC decoding and
WER/CER on dev and test after training.

A variant is a :class:`Variant` subclass registered in ``VARIANTS`` under its config name; it
may change the model before training (LR-SMS, MSRS), choose the training items of each epoch
(DDP-ASR) and add a loss term / react after each step (MSRS).
"""

from __future__ import annotations

import contextlib
import json
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
    word_starts: list[list[float]] | None = None  # seconds, per utterance (None: no alignment)

    def __post_init__(self):
        self.word_frames = None
        if self.word_starts is not None:
            if len(self.word_starts) != len(self.texts):
                raise ValueError(f"{len(self.word_starts)} word alignments for {len(self.texts)} utterances")
            for t, ws in zip(self.texts, self.word_starts):
                if len(ws) != len(t.split()):
                    raise ValueError(f"word alignment {ws} has {len(ws)} starts for the {len(t.split())} words of {t!r}")
            self.word_frames = [[int(round(s / self.hop_s)) for s in ws] for ws in self.word_starts]
        if not self.targets:
            train_syms = set(self.vocab)
            self.targets = [
                features.encode(t, self.vocab, self.units) if s == "train" or set(_pieces(t, self.units)) <= train_syms else []
                for t, s in zip(self.texts, self.splits)
            ]

    def index(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.splits) if s == split]

    def span_target(self, u: int, span: tuple) -> list[int]:
        """Targets of a segment (start frame, end frame, first word, end word): its own words."""
        return features.encode(" ".join(self.texts[u].split()[span[2] : span[3]]), self.vocab, self.units)

    @classmethod
    def from_tensors(cls, tensors: dict, manifest: pd.DataFrame, units: str, hop_s: float) -> "Data":
        off = tensors["offsets"].tolist()
        if len(off) != len(manifest) + 1:
            raise ValueError(f"features hold {len(off) - 1} utterances, manifest {len(manifest)}")
        feats = [tensors["feats"][off[i] : off[i + 1]] for i in range(len(manifest))]
        texts = manifest["text"].astype(str).tolist()
        splits = manifest["split"].tolist()
        vocab = features.vocabulary([t for t, s in zip(texts, splits) if s == "train"], units)
        starts = None
        if "word_starts" in manifest and manifest["word_starts"].notna().all():
            starts = [json.loads(w) for w in manifest["word_starts"]]
        return cls(feats, texts, splits, vocab, units, hop_s, word_starts=starts)


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

    def examples(self, epoch: int, data: Data, train_idx: list[int]) -> list[tuple[int, tuple | None]]:
        """(utterance, span) trained on in this epoch: span None = the whole utterance against its
        transcript, else a segment (start frame, end frame, first word, end word) against its words."""
        return [(u, None) for u in train_idx]

    def observe(self, batch: list, per_utt_loss: torch.Tensor, log_probs: torch.Tensor, out_lens: torch.Tensor) -> None:
        pass

    def loss_extra(self, model) -> torch.Tensor | None:
        return None

    def after_step(self, step: int, model, curve_row: dict, batch_input: tuple) -> None:
        """After optimizer step ``step``; ``batch_input`` = (features, lengths) of its batch."""

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
        self.items: list[tuple[int, tuple | None]] = []  # (utterance, span) as in Variant.examples
        self.scores = None
        self.kept_log: list[np.ndarray] = []
        self.rescore_needed = False

    def _build_items(self, data, train_idx):
        g = self.run["granularity"]
        if g == "utterance":
            self.items = [(u, None) for u in train_idx]
        elif g == "segment":
            if data.word_frames is None:
                raise ValueError(
                    "speech.variants.ddp.granularity=segment needs word alignments (manifest column word_starts): "
                    "the synthetic corpus records them; for librispeech set speech.corpus.alignments"
                )
            seg = max(1, int(round(self.run["segment_s"] / data.hop_s)))
            self.items = [(u, sp) for u in train_idx for sp in ddp.word_segments(data.word_frames[u], len(data.feats[u]), seg)]
        else:
            raise ValueError(f"speech.variants.ddp.granularity={g!r}; allowed: utterance, segment")
        self.item_of = {item: i for i, item in enumerate(self.items)}
        self.scores = np.full(len(self.items), np.nan)
        self.selector = ddp.Selector(
            len(self.items), self.run["fraction"], self.run["rule"], self.run["epsilon"], self.run["max_skip"], self.run["seed"]
        )
        self.info["n_items"] = len(self.items)

    def examples(self, epoch, data, train_idx):
        if self.selector is None:
            self._build_items(data, train_idx)
        r = self.run
        if epoch < r["warmup_epochs"]:
            keep = np.arange(len(self.items))
        elif (epoch - r["warmup_epochs"]) % r["every_epochs"] == 0 or not self.kept_log:
            if r["rescore"] == "all":
                self.rescore_needed = True
                return []  # the trainer rescores every item, then calls select()
            keep = self.selector.select(self.scores)
        else:
            keep = self.kept_log[-1]
        return self._keep(keep)

    def select(self):
        """After a ``rescore: all`` pass: select on the fresh scores."""
        self.rescore_needed = False
        return self._keep(self.selector.select(self.scores))

    def _keep(self, keep):
        self.kept_log.append(keep)
        self.info["kept_items"] = int(len(keep))
        return [self.items[i] for i in keep]

    def observe(self, batch, per_utt_loss, log_probs, out_lens):
        """An item's score is the per-token CTC loss of its latest forward pass (its own labels)."""
        for item, loss in zip(batch, per_utt_loss.detach().cpu().tolist()):
            self.scores[self.item_of[item]] = loss


@VARIANTS.register("msrs")
class MSRS(Variant):
    """MSRS: see compbench.speech.msrs (search at l_1, sharpen to l_2 once stable, then switch)."""

    def __init__(self, run, n_layers):
        super().__init__(run, n_layers)
        self.detector = msrs.StabilityDetector(run["flip_threshold"], run["patience"], run["min_steps"])
        self.schedule = msrs.TwoTemperature(run["temperature"], run["final_temperature"], run["anneal_steps"])
        self.stable_at = self.switched_at = None

    def prepare(self, model):
        msrs.attach(model, self.run["temperature"], self.run["init_density"])

    def loss_extra(self, model):
        if self.switched_at is not None:
            return None
        return self.run["lam"] * msrs.regulariser(model)

    def after_step(self, step, model, row, batch_input):
        if self.switched_at is not None:
            return
        if step % self.run["check_every"] == 0:
            row["density"] = msrs.density(model)
            row["flips"] = self.detector.update(step, msrs.binary_vector(model))
        row["temperature"] = msrs.masked(model)[0].temperature  # l used by this step
        if self.stable_at is None and self.detector.fired_at is not None:
            self.stable_at = step
            self.info.update(stable_step=step, density_at_stable=msrs.density(model))
            LOG.info("MSRS: mask stable at step %d (density %.3f); sharpening l to %g", step, msrs.density(model), self.schedule.final)
        if self.stable_at is None:
            return
        k = step - self.stable_at  # steps trained since stabilisation (the last one at l(k))
        if k < self.schedule.steps:
            msrs.set_temperature(model, self.schedule.at(k + 1))
            return
        self._switch(step, model, batch_input)

    @torch.no_grad()
    def _switch(self, step, model, batch_input):
        """Replace the soft masks by b; record how far they were from b and how far the model's
        outputs moved (mean |delta log p| on this step's batch, eval mode)."""
        was_training = model.training
        model.eval()
        x, lens = batch_input
        before, out_lens = model(x, lens)
        gap = msrs.binary_gap(model)
        self.info.update(
            switch_step=step,
            density_at_switch=msrs.density(model),
            n_masked=int(msrs.binary_vector(model).numel()),
            kept_masked=int(msrs.binary_vector(model).sum()),
            temperature_at_switch=msrs.masked(model)[0].temperature,
            **{f"{k}_at_switch": v for k, v in gap.items()},
        )
        msrs.switch(model, self.run["mode"])
        after, _ = model(x, lens)
        valid = torch.arange(before.shape[1], device=before.device)[None, :] < out_lens[:, None]
        self.info["logp_jump_at_switch"] = float((before - after).abs()[valid].mean())
        model.train(was_training)
        self.switched_at = step
        LOG.info(
            "MSRS: switched to %s at step %d (density %.3f, mean |m - b| %.2e, mean |delta log p| %.3f)",
            self.run["mode"],
            step,
            self.info["density_at_switch"],
            gap["gap_mean"],
            self.info["logp_jump_at_switch"],
        )

    def effective_params(self, model):
        total = count_params(model)
        if self.switched_at is None:  # never switched: the binary mask decides
            ms = msrs.masked(model)
            return total - sum(int((~m.binary()).sum()) for m in ms)
        if self.run["mode"] == "sparse":
            return total - (self.info["n_masked"] - self.info["kept_masked"])
        return total


@contextlib.contextmanager
def deterministic():
    """Deterministic kernels where PyTorch has them, while training (free on the CPU; on CUDA,
    ops without a deterministic kernel, e.g. CTC loss's backward, warn instead of failing); the
    previous setting is restored afterwards. With the seed this makes a run bit-identical on the
    same machine with the same thread count (docs/speech.md, "Reproducibility")."""
    before, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn)


def count_params(model) -> int:
    """Trainable weights of the network (MSRS scores are not network weights)."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.endswith("scores"))


# ---------------------------------------------------------------- loop
def _batch(data: Data, batch: list, device):
    """Features and CTC targets of (utterance, span) examples: a whole utterance against its
    transcript, a segment's frames against the words aligned to it."""
    xs = [data.feats[u] if span is None else data.feats[u][span[0] : span[1]] for u, span in batch]
    lens = torch.tensor([len(x) for x in xs])
    x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
    ys = [torch.tensor(data.targets[u] if span is None else data.span_target(u, span), dtype=torch.long) for u, span in batch]
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


BUDGETS = ("epochs", "steps", "time")


class Budget:
    """When training stops, and the progress the LR schedule follows:

    * ``epochs``: ``train.epochs`` epochs, whatever each holds (the papers' protocol: DDP-ASR's
      pruned epochs are fewer steps and less time);
    * ``steps``: as many optimizer steps as the dense recipe makes (``epochs`` x batches of the whole
      training set), however many (pruned) epochs that takes;
    * ``time``: ``time_s`` seconds of training wall time (the dense run's, measured), selection and
      rescoring included."""

    def __init__(self, kind: str, tr: dict, n_train: int, time_s: float | None = None):
        if kind not in BUDGETS:
            raise ValueError(f"speech.variants.ddp.budgets: {kind!r}; allowed: {', '.join(BUDGETS)}")
        if kind == "time" and not (time_s and time_s > 0):
            raise ValueError("a `time` budget needs the dense run's training time (time_budget_s)")
        self.kind, self.epochs, self.time_s = kind, tr["epochs"], time_s
        self.steps = tr["epochs"] * math.ceil(n_train / tr["batch_size"])

    def progress(self, epoch_progress: float, step: int, elapsed: float) -> float:
        if self.kind == "epochs":
            return epoch_progress / self.epochs
        return step / self.steps if self.kind == "steps" else elapsed / self.time_s

    def done(self, epoch_progress: float, step: int, elapsed: float) -> bool:
        return self.progress(epoch_progress, step, elapsed) >= 1.0


def train(run: dict, sp: dict, data: Data, device, log=LOG, time_budget_s: float | None = None, seed: int = 0) -> dict:
    """Train one run (``run`` = resolved spec from compbench.speech.grid) with training seed
    ``seed`` (one of ``speech.seeds``: initialisation, dropout, SpecAugment, batch order, DDP's
    draws) and evaluate it. ``time_budget_s``: the dense run's training time, for runs with
    ``budget: time``. Returns {"model", "metrics" (dict), "curve" (DataFrame), "info" (dict), "hyps"}."""
    with deterministic():
        return _train(run, sp, data, device, log, time_budget_s, seed)


def _train(run, sp, data, device, log, time_budget_s, seed) -> dict:
    tr = sp["train"]
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    net = M.build(sp["model"], data.feats[0].shape[1], len(data.vocab))
    variant = VARIANTS.get(run["variant"])({**run, "seed": int(seed)}, sp["model"]["num_layers"])
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
    budget = Budget(run.get("budget", "epochs"), tr, len(train_idx), time_budget_s)
    rows, step, audio_s, rescore_s, epoch = [], 0, 0.0, 0.0, 0
    t0 = time.perf_counter()
    while not budget.done(epoch, step, time.perf_counter() - t0):
        ex = variant.examples(epoch, data, train_idx)
        if getattr(variant, "rescore_needed", False):
            rescore_s += _rescore(net, variant, data, device, tr["batch_size"])
            ex = variant.select()
        gen.shuffle(ex)
        nb = math.ceil(len(ex) / tr["batch_size"])
        net.train()
        first = len(rows)
        for bi in range(nb):
            if budget.done(epoch + bi / nb, step, time.perf_counter() - t0):
                break
            batch = ex[bi * tr["batch_size"] : (bi + 1) * tr["batch_size"]]
            x, lens, y, ylens = _batch(data, batch, device)
            x = features.spec_augment(x, tr["specaugment"])
            lp, ol = net(x, lens)
            per = F.ctc_loss(lp.transpose(0, 1), y, ol, ylens, blank=0, reduction="none", zero_infinity=True) / ylens.clamp(min=1)
            loss = per.mean()
            extra = variant.loss_extra(net)
            total = loss + extra if extra is not None else loss
            lr = lr_at(budget.progress(epoch + bi / nb, step, time.perf_counter() - t0), step, tr["lr"], tr["warmup_steps"])
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
            variant.after_step(step, net, row, (x, lens))
            rows.append(row)
        log.info(
            "epoch %d: %d examples, %d steps, loss %.3f, %.1f s",
            epoch,
            len(ex),
            len(rows) - first,
            np.mean([r["loss"] for r in rows[first:]]) if len(rows) > first else float("nan"),
            time.perf_counter() - t0,
        )
        epoch += 1
    train_s = time.perf_counter() - t0
    metrics = {
        "params": params_total,
        "params_effective": variant.effective_params(net),
        "train_s": round(train_s, 3),
        "audio_s": round(audio_s, 2),
        "rescore_audio_s": round(rescore_s, 2),
        "steps": step,
        "epochs_run": epoch,
        "full_epoch_audio_s": round(sum(len(data.feats[u]) for u in train_idx) * data.hop_s, 2),
    }
    hyps = {}
    for split in ("dev", "test"):
        idx = data.index(split)
        if idx:
            er, hyps[split] = evaluate(net, data, idx, device)
            metrics.update({f"{split}_{k}": v for k, v in er.items()})
    return {"model": net, "metrics": metrics, "curve": pd.DataFrame(rows), "info": variant.info, "hyps": hyps}


@torch.no_grad()
def _rescore(net, variant, data, device, batch_size) -> float:
    """DDP ``rescore: all``: a forward pass over every training item to refresh its score."""
    net.eval()
    seconds = 0.0
    ex = list(variant.items)
    for i in range(0, len(ex), batch_size):
        batch = ex[i : i + batch_size]
        x, lens, y, ylens = _batch(data, batch, device)
        lp, ol = net(x, lens)
        per = F.ctc_loss(lp.transpose(0, 1), y, ol, ylens, blank=0, reduction="none", zero_infinity=True) / ylens.clamp(min=1)
        variant.observe(batch, per, lp, ol)
        seconds += float(lens.sum()) * data.hop_s
    net.train()
    return seconds

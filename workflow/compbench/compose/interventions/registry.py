"""Interventions of the composability study (Kolbeinsson et al., "Composable
Interventions for Language Models", ICLR 2025): knowledge editing, compression
and unlearning, each a function that changes a model in place.

A method is one module in this package, decorated with ``@register``, plus one
import line in :mod:`compbench.compose.interventions.methods`. Its
function is called as ``fn(model, ctx, **params)``: ``ctx`` is a
:class:`Context` (tokenizer, device, the study's data, calibration ids, a cache
directory), ``params`` the method's settings from the config (an unknown or
missing keyword fails fast in Python's own words, naming the method). It
returns a dict of facts about what it did (e.g. ``avg_bits`` for a compressor,
losses for an editor) that is recorded with the results.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from compbench.registry import Registry

if TYPE_CHECKING:  # torch is only named in annotations: the DAG build imports this module (compose.data's sources)
    import torch

CATEGORIES = ("edit", "compress", "unlearn")


@dataclass(frozen=True)
class EditRequest:
    """One counterfactual edit: after ``prompt`` the model should say ``target_new``
    (with its leading space) instead of ``target_true``; ``paraphrases`` are other
    prompts for the same fact (generalisation)."""

    subject: str
    relation: str
    prompt: str
    target_new: str
    target_true: str
    paraphrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Probe:
    """A prompt and the answer the unedited world gives (locality probe)."""

    prompt: str
    answer: str


@dataclass(frozen=True)
class MCQ:
    """A multiple-choice item scored by the log-likelihood of ``" " + choice`` after ``prompt``."""

    prompt: str
    choices: tuple[str, ...]
    label: int


@dataclass
class StudyData:
    """Everything the interventions and their evaluation read."""

    edits: list[EditRequest]
    locality: list[Probe]
    forget_texts: list[str]  # the hazardous topic (unlearning's forget set)
    retain_texts: list[str]  # general text (unlearning's retain set)
    forget_mcq: list[MCQ]  # accuracy on it should drop after unlearning
    utility_mcq: list[MCQ]  # general knowledge that should survive
    knowledge: list[dict] = field(default_factory=list)  # the dense model's knowledge check (source facts), else empty

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "StudyData":
        return cls(
            edits=[EditRequest(**{**e, "paraphrases": tuple(e.get("paraphrases", ()))}) for e in d["edits"]],
            locality=[Probe(**p) for p in d["locality"]],
            forget_texts=list(d["forget_texts"]),
            retain_texts=list(d["retain_texts"]),
            forget_mcq=[MCQ(m["prompt"], tuple(m["choices"]), int(m["label"])) for m in d["forget_mcq"]],
            utility_mcq=[MCQ(m["prompt"], tuple(m["choices"]), int(m["label"])) for m in d["utility_mcq"]],
            knowledge=list(d.get("knowledge", [])),
        )


@dataclass
class Context:
    tokenizer: object
    device: torch.device
    data: StudyData
    calib_ids: torch.Tensor | None = None  # (n, seq_len) token ids, for compressors and MEMIT statistics
    cache_dir: Path | None = None  # per-model cache (MEMIT's covariance statistics)
    seed: int = 0
    log: Callable[[str], None] = field(default=lambda msg: None)


@dataclass(frozen=True)
class Intervention:
    name: str
    category: str
    fn: Callable
    needs_calibration: bool = False

    def params_allowed(self) -> list[str]:
        sig = inspect.signature(self.fn)
        return [p for p in list(sig.parameters)[2:]]

    def __call__(self, model, ctx: Context, **params) -> dict:
        unknown = sorted(set(params) - set(self.params_allowed()))
        if unknown:
            raise ValueError(f"intervention {self.name!r}: unknown setting(s) {unknown}; allowed: {self.params_allowed()}")
        if self.needs_calibration and ctx.calib_ids is None:
            raise ValueError(f"intervention {self.name!r} needs calibration data")
        return self.fn(model, ctx, **params) or {}


INTERVENTIONS: Registry[Intervention] = Registry("intervention")


def register(name: str, category: str, needs_calibration: bool = False):
    if category not in CATEGORIES:
        raise ValueError(f"intervention category {category!r}; allowed: {', '.join(CATEGORIES)}")

    def deco(fn):
        INTERVENTIONS.register(name)(Intervention(name, category, fn, needs_calibration))
        return fn

    return deco

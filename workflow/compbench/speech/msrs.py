"""MSRS: sparse mask optimisation for training speech recognisers from scratch
(Fernandez-Lopez et al., "MSRS: Training Multimodal Speech Recognition Models from Scratch with
Sparse Mask Optimization", Interspeech 2024), built on Continuous Sparsification (Savarese et al.,
NeurIPS 2020).

Every target linear gets a learnable mask score per weight; from step 0 the layer uses
W_eff = W * m_l with the soft mask m_l = sigmoid(l * phi) (the paper's relaxation, l its
temperature), and the loss gets the sparsity regulariser lambda * 1^T m_l = lambda * sum of the soft
masks over every masked weight (the paper's L1 term; Continuous Sparsification's reference code
adds ``lmbda * sum(m.sum() for m in masks)`` too: a sum, not a mean). Scores are trained with their
own learning rate ``score_lr``. The binary mask is b = [phi > 0] (= [m_l > 0.5] at any l).

Two temperatures (the paper's two-temperature strategy):

1. **search** at l = l_1 (``temperature``): the mask moves freely; every ``check_every`` steps the
   fraction of entries of b that flipped since the previous check is measured; the mask is
   *stable* once that fraction is below ``flip_threshold`` at ``patience`` consecutive checks after
   it first moved (and the step is at least ``min_steps``);
2. **sharpen** at l_2 (``final_temperature``): l rises from l_1 to l_2 geometrically over
   ``anneal_steps`` steps (weights, scores and regulariser still trained), so that m_l is
   near-binary -- within 1e-2 of b for all but a few weights -- when the mask is applied
   (``anneal_steps: 0`` switches right at stabilisation, at l_1: the single-temperature ablation).

Then training switches (the soft mask is replaced by b, which it is already close to, so the
model does not jump) to

* ``sparse``: W_eff = W * b with b frozen (sparse training to the end), or
* ``dense``:  W <- W * b, masks removed, all weights trained (dense continuation).

Where this departs from the paper: its method section could not be read here beyond the
relaxation, the two-temperature strategy and the loss; the geometric ramp between the two
temperatures (Continuous Sparsification's exponential schedule, compressed into
``anneal_steps``), l_2 = 200 (Continuous Sparsification's default final temperature) and the
flip-rate stability test are this implementation's choices, all config values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from compbench.speech.model import get_child, set_child, target_linears


class MaskedLinear(nn.Module):
    linear_like = True

    def __init__(self, lin: nn.Linear, temperature: float, init_density: float):
        super().__init__()
        if not 0.5 < init_density < 1:
            raise ValueError(f"speech.variants.msrs.init_density={init_density} must be in (0.5, 1) (all weights start kept)")
        if temperature <= 0:
            raise ValueError(f"speech.variants.msrs.temperature={temperature} must be > 0")
        self.weight, self.bias = lin.weight, lin.bias
        self.temperature = float(temperature)  # l of m_l = sigmoid(l * phi)
        s0 = math.log(init_density / (1 - init_density)) / self.temperature  # m_l = init_density at step 0
        self.scores = nn.Parameter(torch.full_like(lin.weight, s0))
        self.register_buffer("hard", torch.ones_like(lin.weight, dtype=torch.bool))
        self.mode = "soft"

    def soft(self) -> torch.Tensor:
        """m_l = sigmoid(l * phi) (the paper's relaxation)."""
        return torch.sigmoid(self.temperature * self.scores)

    def binary(self) -> torch.Tensor:
        return (self.scores > 0) if self.mode == "soft" else self.hard

    def forward(self, x):
        w = self.weight * (self.soft() if self.mode == "soft" else self.hard)
        return F.linear(x, w, self.bias)

    def freeze(self) -> None:
        """Keep training sparse with the current binary mask."""
        self.hard = (self.scores > 0).detach().clone()
        self.mode = "hard"
        self.scores.requires_grad_(False)

    def to_dense(self) -> nn.Linear:
        """A plain linear holding the *same* parameter objects (so an optimizer keeps its state),
        with the masked-out weights set to zero."""
        lin = nn.Linear(self.weight.shape[1], self.weight.shape[0], bias=self.bias is not None, device=self.weight.device)
        with torch.no_grad():
            self.weight.mul_(self.binary())
        lin.weight = self.weight
        if self.bias is not None:
            lin.bias = self.bias
        return lin


def attach(model: nn.Module, temperature: float, init_density: float) -> dict[str, MaskedLinear]:
    out = {}
    for name, (_, _, parent, key) in target_linears(model).items():
        m = MaskedLinear(get_child(parent, key), temperature, init_density)
        set_child(parent, key, m)
        out[name] = m
    return out


def masked(model: nn.Module) -> list[MaskedLinear]:
    return [m for m in model.modules() if isinstance(m, MaskedLinear)]


def regulariser(model: nn.Module) -> torch.Tensor:
    """1^T m_l: the *sum* of the soft masks over every masked weight (the paper's L1 term, which the
    loss weighs by lambda), so lambda is per weight and does not shrink with the model's size."""
    ms = [m.soft().sum() for m in masked(model) if m.mode == "soft"]
    if not ms:
        return torch.zeros(())
    return torch.stack(ms).sum()


def set_temperature(model: nn.Module, temperature: float) -> None:
    for m in masked(model):
        m.temperature = float(temperature)


class TwoTemperature:
    """l_1 while the mask is searched; after stabilisation l rises geometrically to l_2 over
    ``anneal_steps`` steps: l(k) = l_1 (l_2 / l_1)^min(1, k / anneal_steps) at the k-th step after
    stabilisation (the trainer switches after step ``anneal_steps``, trained at l_2; with 0 it
    switches at stabilisation, at l_1)."""

    def __init__(self, first: float, final: float, anneal_steps: int):
        if not 0 < first <= final:
            raise ValueError(
                f"speech.variants.msrs: temperature={first} and final_temperature={final} need 0 < temperature <= final_temperature"
            )
        if anneal_steps < 0:
            raise ValueError(f"speech.variants.msrs.anneal_steps={anneal_steps} must be >= 0")
        self.first, self.final, self.steps = float(first), float(final), int(anneal_steps)

    def at(self, k: int) -> float:
        if k <= 0:
            return self.first
        frac = 1.0 if self.steps == 0 else min(1.0, k / self.steps)
        return self.first * (self.final / self.first) ** frac


def binary_gap(model: nn.Module) -> dict:
    """How far the soft masks are from the binary mask they will be replaced by: mean and max of
    |m_l - b| over every masked weight, and the fraction within 1e-2."""
    gaps = torch.cat([(m.soft() - m.binary().float()).abs().flatten() for m in masked(model) if m.mode == "soft"])
    return {"gap_mean": float(gaps.mean()), "gap_max": float(gaps.max()), "near_binary": float((gaps < 1e-2).float().mean())}


def binary_vector(model: nn.Module) -> torch.Tensor:
    return torch.cat([m.binary().flatten() for m in masked(model)])


def density(model: nn.Module) -> float:
    return float(binary_vector(model).float().mean())


def flip_fraction(prev: torch.Tensor, cur: torch.Tensor) -> float:
    return float((prev != cur).float().mean())


class StabilityDetector:
    """Fires at the first check whose flip fraction is < threshold for ``patience`` checks in a row,
    counted only once the mask has started to move (a check with flips >= threshold): a mask
    that has not changed yet (all scores still above 0 from their initialisation) is not
    "stable", it is untouched."""

    def __init__(self, threshold: float, patience: int = 1, min_steps: int = 0):
        if patience < 1:
            raise ValueError("speech.variants.msrs.patience must be >= 1")
        self.threshold, self.patience, self.min_steps = threshold, patience, min_steps
        self.prev, self.calm, self.fired_at, self.armed = None, 0, None, False

    def update(self, step: int, mask: torch.Tensor) -> float | None:
        """Feed the binary mask at a check; returns the flip fraction (None at the first check)."""
        mask = mask.detach().clone()
        if self.prev is None:
            self.prev = mask
            return None
        flips = flip_fraction(self.prev, mask)
        self.prev = mask
        if flips >= self.threshold:
            self.armed = True
        self.calm = self.calm + 1 if (flips < self.threshold and self.armed) else 0
        if self.fired_at is None and self.calm >= self.patience and step >= self.min_steps:
            self.fired_at = step
        return flips


def switch(model: nn.Module, mode: str) -> None:
    """After stabilisation: ``sparse`` freezes the binary masks; ``dense`` folds them into the
    weights and removes them."""
    if mode == "sparse":
        for m in masked(model):
            m.freeze()
    elif mode == "dense":
        for name, (_, _, parent, key) in target_linears(model).items():
            m = get_child(parent, key)
            if isinstance(m, MaskedLinear):
                set_child(parent, key, m.to_dense())
    else:
        raise ValueError(f"speech.variants.msrs mode {mode!r}; allowed: sparse, dense")

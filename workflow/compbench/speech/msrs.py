"""MSRS: sparse-regularised mask learning from scratch (Fernandez-Lopez et al., Interspeech 2024).

Every target linear gets a learnable score per weight; from step 0 the layer uses
W_eff = W * m with the soft mask m = sigmoid(s / T) (temperature T), and the loss gets a sparsity
regulariser lambda * mean(m) over all masked weights (scores trained with their own learning
rate ``score_lr``). The binary mask is b = [m > 0.5] = [s > 0].
Every ``check_every`` steps the fraction of entries of b that flipped since the previous check is
measured; the mask is *stable* once that fraction is below ``flip_threshold`` at ``patience``
consecutive checks after it first moved (and the step is at least ``min_steps``). Then training switches to

* ``sparse``: W_eff = W * b with b frozen (sparse training to the end), or
* ``dense``:  W <- W * b, masks removed, all weights trained (dense continuation).
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
        self.weight, self.bias = lin.weight, lin.bias
        self.temperature = float(temperature)
        s0 = self.temperature * math.log(init_density / (1 - init_density))
        self.scores = nn.Parameter(torch.full_like(lin.weight, s0))
        self.register_buffer("hard", torch.ones_like(lin.weight, dtype=torch.bool))
        self.mode = "soft"

    def soft(self) -> torch.Tensor:
        return torch.sigmoid(self.scores / self.temperature)

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
    """mean of the soft masks over every masked weight (the L1 norm of m, normalised)."""
    ms = [m.soft() for m in masked(model) if m.mode == "soft"]
    if not ms:
        return torch.zeros(())
    return torch.cat([m.flatten() for m in ms]).mean()


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

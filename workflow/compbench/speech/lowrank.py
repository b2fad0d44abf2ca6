"""LR-SMS: low-rank weights trained from scratch.

Every chosen linear W (out x in) is replaced by a product of two factors, W ~ U V with
U: out x r, V: r x in, from step 0. Ranks are set per module type (attention vs feed-forward)
and per layer by a linear schedule across depth; the factors are initialised from the SVD of
the dense layer's own random initialisation, W0 = P S Q^T -> U = P_r S_r^1/2, V = S_r^1/2 Q_r^T
(the best rank-r approximation of W0, Eckart-Young), or randomly (the paper's ablation).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from compbench.speech.model import get_child, set_child, target_linears


class FactorizedLinear(nn.Module):
    """y = U (V x) + b with V: Linear(in, r, no bias), U: Linear(r, out, bias)."""

    linear_like = True

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        if not 1 <= rank <= min(in_features, out_features):
            raise ValueError(f"rank {rank} outside [1, {min(in_features, out_features)}] for a {out_features}x{in_features} linear")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.V = nn.Linear(in_features, rank, bias=False)
        self.U = nn.Linear(rank, out_features, bias=bias)

    @classmethod
    def from_linear(cls, lin: nn.Linear, rank: int, init: str = "svd") -> "FactorizedLinear":
        new = cls(lin.in_features, lin.out_features, rank, bias=lin.bias is not None)
        if init == "svd":
            P, S, Qh = torch.linalg.svd(lin.weight.detach().double(), full_matrices=False)
            root = S[:rank].sqrt()
            with torch.no_grad():
                new.U.weight.copy_((P[:, :rank] * root).to(lin.weight.dtype))
                new.V.weight.copy_((root[:, None] * Qh[:rank]).to(lin.weight.dtype))
        elif init == "random":
            # nn.Linear's default (Kaiming-uniform) init for each factor, then U rescaled so the
            # product has the dense init's per-entry scale: Var(UV)_ij = r Var(U) Var(V).
            with torch.no_grad():
                target = lin.weight.std().item()
                got = (new.U.weight @ new.V.weight).std().item()
                new.U.weight.mul_(target / max(got, 1e-12))
        else:
            raise ValueError(f"speech.variants.lrsms.init={init!r}; allowed: svd, random")
        if lin.bias is not None:
            with torch.no_grad():
                new.U.bias.copy_(lin.bias)
        return new

    def forward(self, x):
        return self.U(self.V(x))

    def extra_repr(self):
        return f"in={self.in_features}, out={self.out_features}, rank={self.rank}"


def linear_schedule(first: float, last: float, n_layers: int) -> list[float]:
    """Rank ratio per layer, linear in depth from ``first`` (layer 0) to ``last`` (layer L-1)."""
    if n_layers == 1:
        return [float(first)]
    return [first + (last - first) * i / (n_layers - 1) for i in range(n_layers)]


def rank_for(ratio: float, in_features: int, out_features: int, min_rank: int) -> int:
    """rank = round(ratio * min(in, out)), clamped to [min_rank, min(in, out)]."""
    full = min(in_features, out_features)
    return int(min(full, max(min_rank, int(math.floor(ratio * full + 0.5)))))


def factorize(model: nn.Module, attn: list[float], ff: list[float], min_rank: int, init: str = "svd") -> dict[str, int]:
    """Replace every target linear by a FactorizedLinear; ``attn``/``ff`` = [ratio at the first
    layer, ratio at the last layer]. Returns module name -> rank. A layer whose rank would not
    reduce parameters (r (in + out) >= in out) is still factorised as asked (ratio 1.0 = full rank)."""
    targets = target_linears(model)
    n_layers = 1 + max(t[1] for t in targets.values())
    sched = {"attn": linear_schedule(attn[0], attn[1], n_layers), "ff": linear_schedule(ff[0], ff[1], n_layers)}
    ranks = {}
    for name, (kind, layer, parent, key) in targets.items():
        lin = get_child(parent, key)
        r = rank_for(sched[kind][layer], lin.in_features, lin.out_features, min_rank)
        set_child(parent, key, FactorizedLinear.from_linear(lin, r, init))
        ranks[name] = r
    return ranks

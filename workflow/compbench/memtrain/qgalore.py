"""Q-GaLore (Zhang et al. 2024): INT8 weights with stochastic rounding, INT4
projection matrices, and an adaptive, per-layer subspace refresh.

Reference: VITA-Group/Q-GaLore.

* ``QLinear`` = ``utils/quantization.py`` ``QGaLoreLinear`` + ``W8Linear``: the
  weight is held as uint8 codes with per-group (256) scales and zero points; the
  forward and backward dequantise it on the fly; the weight gradient goes to a
  separate float buffer (``float_grad`` there, ``grad_w`` here), since an integer
  tensor cannot carry ``.grad``. After the optimizer's update of the dequantised
  weight it is quantised back, with stochastic rounding (``stochastic_round``,
  Q-GaLore Eq. 4) or nearest rounding (the ablation).
* ``AdaptiveProjector`` = ``q_galore_projector.py`` ``GaLoreProjector`` with
  ``quant=True``: after each SVD the projection matrix is stored in INT4
  (``proj_bits=4``, ``proj_group_size=256``) and dequantised for every matmul.
  Adaptive refresh (Q-GaLore §3.3, ``project``): at every SVD, the cosine
  similarity between the new and the previous first singular vector
  (``ortho[:1, :]`` for a right projection, ``ortho[:, :1]`` for a left one) is
  pushed into a queue of length ``queue_size`` (5); when the queue is full and its
  mean is >= ``cos_threshold`` (0.4), the layer's gap is multiplied by
  ``gamma_proj`` (2): ``update_proj_gap = int(update_proj_gap * gamma_proj)``.
  The queue is not cleared, so the gap keeps growing at each further refresh for
  as long as the mean stays above the threshold. A refresh happens when
  ``step % update_proj_gap == 0`` with the current (grown) gap, as in the reference.
  The similarity is signed, as in the reference (an SVD sign flip counts as dissimilar).

Not reproduced: the reference keeps the Adam moments in 8 bits (bitsandbytes
``AdamW8bit``); here they are float32 for every variant, which the memory
accounting reports as such.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compbench.memtrain import quant
from compbench.memtrain.galore import GaLoreProjector


def next_gap(queue: list[float], gap: int, similarity: float, queue_size: int, cos_threshold: float, gamma: float) -> int:
    """One adaptive-refresh check (in place on ``queue``); returns the new gap.

    Literal transcription of ``q_galore_projector.py`` lines ``if len(self.queue) == self.queue_size:
    self.queue.pop(0)`` ... ``self.update_proj_gap = int(self.update_proj_gap * self.gamma_proj)``.
    """
    if len(queue) == queue_size:
        queue.pop(0)
    queue.append(float(similarity))
    if len(queue) == queue_size and sum(queue) / queue_size >= cos_threshold:
        gap = int(gap * gamma)
    return gap


class AdaptiveProjector(GaLoreProjector):
    """GaLore projector with an INT4 projection matrix and an adaptive refresh gap."""

    def __init__(
        self,
        rank,
        update_proj_gap=200,
        scale=1.0,
        proj_bits=4,
        proj_group_size=256,
        adaptive=True,
        cos_threshold=0.4,
        gamma_proj=2.0,
        queue_size=5,
    ):
        super().__init__(rank, update_proj_gap, scale)
        self.proj_bits = proj_bits
        self.proj_group_size = proj_group_size
        self.adaptive = adaptive
        self.cos_threshold = cos_threshold
        self.gamma_proj = gamma_proj
        self.queue_size = queue_size
        self.queue: list[float] = []
        self.past = None
        self.q = None  # QTensor of the projection
        self.history: list[tuple[int, int, float]] = []  # (step, gap after this refresh, similarity)

    def refresh(self, grad, step):
        P = self.orthogonal(grad, self.side)
        first = (P[:1, :] if self.side == "right" else P[:, :1]).flatten().clone()
        sim = float("nan")
        if self.past is not None:
            sim = F.cosine_similarity(self.past, first, dim=0).item()
            if self.adaptive:
                self.update_proj_gap = next_gap(self.queue, self.update_proj_gap, sim, self.queue_size, self.cos_threshold, self.gamma_proj)
        self.past = first
        self.history.append((step, self.update_proj_gap, sim))
        if self.proj_bits and self.proj_bits < 32:
            self.q = quant.quantize(P, bits=self.proj_bits, group_size=self.proj_group_size)
            self.ortho = None
        else:
            self.ortho = P

    def should_refresh(self, step):
        return (self.q is None and self.ortho is None) or step % self.update_proj_gap == 0

    def matrix(self):
        return self.q.dequantize() if self.q is not None else self.ortho

    def state_tensors(self):
        out = dict(self.q.tensors()) if self.q is not None else super().state_tensors()
        if self.past is not None:
            out["past_vector"] = self.past
        return out


class _W8Linear(torch.autograd.Function):
    """``W8Linear``: y = x W^T + b with W dequantised from INT8; dW accumulates into ``grad_w``."""

    @staticmethod
    def forward(ctx, x, anchor, bias, module):
        ctx.module = module
        ctx.save_for_backward(x)
        ctx.has_bias = bias is not None
        return F.linear(x, module.dequantize(x.dtype), bias)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        m = ctx.module
        gx = gy @ m.dequantize(gy.dtype)
        gw = gy.reshape(-1, gy.size(-1)).t() @ x.reshape(-1, x.size(-1))
        m.grad_w = gw if m.grad_w is None else m.grad_w + gw
        gb = gy.reshape(-1, gy.size(-1)).sum(0) if ctx.has_bias else None
        return gx, None, gb, None


class QLinear(nn.Module):
    """A linear layer whose weight lives in INT8 (``QGaLoreLinear``)."""

    def __init__(self, linear: nn.Linear, bits=8, group_size=256, stochastic_round=True, generator=None):
        super().__init__()
        if bits != 8:
            raise NotImplementedError(f"weight_bits={bits}: only 8 (as in Q-GaLore)")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bits, self.group_size, self.stochastic_round = bits, group_size, stochastic_round
        self.generator = generator
        q = quant.quantize(linear.weight.data, bits=bits, group_size=group_size)
        self.register_buffer("qweight", q.codes.view(linear.weight.shape).clone())
        self.register_buffer("scales", q.scales.clone())
        self.register_buffer("zeros", q.zeros.clone())
        self.bias = nn.Parameter(linear.bias.data.clone()) if linear.bias is not None else None
        # zero-size leaf so the autograd Function runs even when no input requires grad
        self.anchor = nn.Parameter(torch.empty(0, device=linear.weight.device))
        self.grad_w = None

    def qtensor(self) -> quant.QTensor:
        return quant.QTensor(
            self.qweight.view(-1), self.scales, self.zeros, (self.out_features, self.in_features), self.bits, self.group_size
        )

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        return quant.dequantize(self.qtensor(), dtype)

    @torch.no_grad()
    def requantize_(self, W: torch.Tensor) -> None:
        q = quant.quantize(W, bits=self.bits, group_size=self.group_size, stochastic=self.stochastic_round, generator=self.generator)
        self.qweight.copy_(q.codes.view_as(self.qweight))
        self.scales.copy_(q.scales)
        self.zeros.copy_(q.zeros)

    def forward(self, x):
        return _W8Linear.apply(x, self.anchor, self.bias, self)

    def to_linear(self) -> nn.Linear:
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(self.dequantize())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin


def quantize_linears(model: nn.Module, names: list[str], **kw) -> dict[str, QLinear]:
    """Replace the named ``nn.Linear`` modules by :class:`QLinear` in place."""
    out = {}
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        lin = getattr(parent, child)
        if not isinstance(lin, nn.Linear):
            raise TypeError(f"{name} is {type(lin).__name__}, not nn.Linear")
        q = QLinear(lin, **kw).to(lin.weight.device)
        setattr(parent, child, q)
        out[name] = q
    return out


def dequantize_linears(model: nn.Module) -> None:
    """Turn every :class:`QLinear` back into an ``nn.Linear`` holding the dequantised weight."""
    for name, mod in list(model.named_modules()):
        if isinstance(mod, QLinear):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, mod.to_linear().to(mod.qweight.device))

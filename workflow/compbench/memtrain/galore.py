"""GaLore: gradient low-rank projection (Zhao et al. 2024), and the AdamW that
every training variant of this line shares.

Reference: jiaweizzhao/GaLore, ``galore_torch/galore_projector.py`` (class
``GaLoreProjector``, ``proj_type='std'``) and ``galore_torch/adamw.py``
(``AdamW.step``). For a weight gradient ``G`` (m x n) and rank r (GaLore
Algorithm 1 / Eq. 6-7)::

    every T steps:  U, S, V^T = SVD(G_t)
                    P = V^T[:r]   (r x n)  if m >= n   ("right")
                    P = U[:, :r]  (m x r)  if m <  n   ("left")
    R_t = G_t P^T   or   P^T G_t                    # project: r-dim optimizer state
    N_t = Adam(R_t) = m_t / (sqrt(v_t) + eps)       # moments live in rank r
    W  <- W - eta * alpha * (N_t P   or   P N_t)    # project back, scale alpha

so the Adam moments of an m x n matrix take 2·m·r (or 2·r·n) floats instead of
2·m·n, plus the projection matrix P. The refresh happens when ``step % T == 0``
with ``step`` counted before the update (``state["step"]`` in the reference).

The projector keeps which side it projected on explicitly instead of the
reference's shape test in ``project_back`` (same result for r <= min(m, n)).
"""

from __future__ import annotations

import math
import time

import torch


class GaLoreProjector:
    """Rank-r projection refreshed every ``update_proj_gap`` steps by an SVD of the gradient."""

    def __init__(self, rank: int, update_proj_gap: int = 200, scale: float = 1.0):
        if rank < 1:
            raise ValueError(f"GaLore rank={rank} must be >= 1")
        if update_proj_gap < 1:
            raise ValueError(f"GaLore update_proj_gap={update_proj_gap} must be >= 1")
        self.rank = int(rank)
        self.update_proj_gap = int(update_proj_gap)
        self.scale = float(scale)
        self.ortho = None  # float projection matrix
        self.side = None  # "right" (m >= n) or "left"
        self.svd_count = 0
        self.svd_seconds = 0.0

    # -- SVD ---------------------------------------------------------------
    def orthogonal(self, grad: torch.Tensor, side: str) -> torch.Tensor:
        """``get_orthogonal_matrix``: the top-r right (V^T[:r]) or left (U[:, :r]) singular vectors, float32."""
        t0 = time.perf_counter()
        U, _s, Vh = torch.linalg.svd(grad.detach().float(), full_matrices=False)
        self.svd_count += 1
        self.svd_seconds += time.perf_counter() - t0
        return Vh[: self.rank, :].contiguous() if side == "right" else U[:, : self.rank].contiguous()

    def should_refresh(self, step: int) -> bool:
        return self.ortho is None or step % self.update_proj_gap == 0

    def refresh(self, grad: torch.Tensor, step: int) -> None:
        self.ortho = self.orthogonal(grad, self.side)

    def matrix(self) -> torch.Tensor:
        """The projection matrix as used in the matmuls (subclasses dequantise)."""
        return self.ortho

    # -- project / project back ------------------------------------------
    def project(self, grad: torch.Tensor, step: int) -> torch.Tensor:
        if grad.dim() != 2:
            raise ValueError(f"GaLore projects 2-D gradients; got shape {tuple(grad.shape)}")
        if self.side is None:
            self.side = "right" if grad.shape[0] >= grad.shape[1] else "left"
        if self.should_refresh(step):
            self.refresh(grad, step)
        P = self.matrix().to(grad.dtype)
        return grad @ P.t() if self.side == "right" else P.t() @ grad

    def project_back(self, low: torch.Tensor) -> torch.Tensor:
        P = self.matrix().to(low.dtype)
        full = low @ P if self.side == "right" else P @ low
        return full * self.scale

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {} if self.ortho is None else {"ortho": self.ortho}


class ProjectedAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias correction; reference ``galore_torch/adamw.py``)
    with optional GaLore projection per parameter group and INT8-held weights.

    * A group with ``rank`` projects every 2-D gradient through a projector made by
      ``group["projector"](group)`` (default :class:`GaLoreProjector`).
    * ``qlinears`` maps a parameter tensor (a ``QLinear``'s uint8 codes) to its module:
      its gradient is ``module.grad_w``, and the update is applied to the dequantised
      weight, which is then quantised back (stochastically when the module says so),
      as in Q-GaLore's ``AdamW8bit.step``.

    Without projected groups and quantised weights this is GaLore's own AdamW, the
    Hugging Face ``transformers`` one (``galore_torch/adamw.py``, "copied from
    transformers/optimization.py"), **not** ``torch.optim.AdamW``; per step t::

        m = β1·m + (1−β1)·g ;  v = β2·v + (1−β2)·g²
        W ← W − lr·(√(1−β2^t) / (1−β1^t)) · m / (√v + eps)    # eps added before the bias correction
        W ← W − lr·wd·W                                        # decoupled decay, after the update

    whereas torch divides by √(v / (1−β2^t)) + eps (so its eps is √(1−β2^t) times
    smaller early on) and decays before the update. The two agree only where
    eps ≪ √v; with gradients of the size of eps they differ by tens of percent of
    the parameter movement (tested against a literal transcription of the reference
    and against ``torch.optim.AdamW``, tests/memtrain/test_memtrain.py). The
    reference's default eps is 1e-6; this line's is ``memtrain.eps`` (default 1e-8).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, qlinears=None):
        if lr < 0:
            raise ValueError(f"learning rate {lr} must be >= 0")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas {betas} must be in [0, 1)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self.qlinears = dict(qlinears or {})  # id(tensor) -> QLinear

    def _grad(self, p):
        q = self.qlinears.get(id(p))
        return (q.grad_w if q is not None else p.grad), q

    def grads(self) -> list[torch.Tensor]:
        """Every gradient this optimizer will use (for clipping and accounting)."""
        out = []
        for group in self.param_groups:
            for p in group["params"]:
                g, _ = self._grad(p)
                if g is not None:
                    out.append(g)
        return out

    def projectors(self) -> list:
        return [s["projector"] for s in self.state.values() if "projector" in s]

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none=set_to_none)
        for q in self.qlinears.values():
            q.grad_w = None

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                grad, q = self._grad(p)
                if grad is None:
                    continue
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                projector = None
                if group.get("rank") and grad.dim() == 2:
                    if "projector" not in state:
                        state["projector"] = group.get("make_projector", default_projector)(group)
                    projector = state["projector"]
                    grad = projector.project(grad, state["step"])
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(grad)
                    state["exp_avg_sq"] = torch.zeros_like(grad)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = v.sqrt().add_(group["eps"])
                step_size = group["lr"] * math.sqrt(1 - beta2 ** state["step"]) / (1 - beta1 ** state["step"])
                update = m / denom
                if projector is not None:
                    update = projector.project_back(update)
                W = q.dequantize(grad.dtype) if q is not None else p
                W.add_(update, alpha=-step_size)
                if group["weight_decay"] > 0:
                    W.add_(W, alpha=-group["lr"] * group["weight_decay"])
                if q is not None:
                    q.requantize_(W)
        return loss


def default_projector(group) -> GaLoreProjector:
    return GaLoreProjector(group["rank"], update_proj_gap=group["update_proj_gap"], scale=group["scale"])

"""Layerwise channel sparsity for structural pruning: PASS and its baselines.

PASS (Huang et al., "PASS: Visual prompt locates good structure sparsity
through a recurrent hypernetwork"): a hyper-network takes *learned visual
prompts* together with per-layer weight statistics and outputs each layer's
channel sparsity *recurrently* (layer by layer, an LSTM cell carrying the
dependency between layers); the chosen channels are removed and the
sub-network fine-tuned. No public code exists; this is our reading of the
paper. Where the paper leaves a choice open we chose, and say so here:

* **Prompt** (:class:`Prompt`): an additive pad prompt (learned pixels on a
  border of ``pad`` pixels, zero inside), as in visual prompting
  (Bahng et al. 2022), added to every input image of the frozen dense model.
* **Per-channel inputs** of layer (unit) ``l``, channel ``c``: weight statistics
  (L1 norm and L2 norm of the filter, |BN gamma|, L1 norm of the consuming
  conv's input slice; each divided by its layer mean) and prompt-driven
  activation statistics (mean and std of the channel's post-BN-ReLU response
  to a batch of *prompted* images, divided by the layer mean). The activation
  features are recomputed every step, so gradients reach the prompt through them
  and through the masked network's loss.
* **Hyper-network** (:class:`HyperNet`): a shared channel encoder φ (MLP)
  maps each channel's features to an embedding and a channel score
  ``s_lc``; the layer embedding ``z_l`` = mean_c φ + layer statistics (depth
  position, log width, share of dense MACs); an ``nn.LSTMCell`` consumes
  ``[z_l, k_{l-1}]`` with the previous layer's hidden state (the recurrence) and
  emits the keep ratio ``k_l = k_min + (1 - k_min)·σ(w·h_l + b)``
  (sparsity = 1 − k_l).
* **Differentiable masks**: soft rank ``ρ_lc = Σ_{j≠c} σ((s_lj − s_lc)/τ)/C_l``;
  mask ``m_lc = σ((k_l − ρ_lc − 0.5/C_l)·C_l/T)`` (≈ top ``k_l·C_l`` channels by score).
* **Objective** (hyper-network and prompt trained, dense weights frozen):
  ``CE(f_m(x + P), y) + λ·(MACs(k)/MACs_dense − ρ_target)²`` with
  ``MACs(k)`` the exact (bilinear) MAC count of the kept-channel vector
  (:class:`compbench.vision.channels.UnitFlops`).
* **Hard sub-network**: keep ``round(k_l C_l)`` top-score channels per unit, then
  one global rescaling of the ratios to the FLOPs budget
  (:func:`compbench.vision.channels.counts_for_budget`) — every method is compared at
  the same budget. The prompt is used to *find* the structure only; the pruned
  network is fine-tuned and evaluated on plain images.

Baselines (same budget, same fine-tuning): ``l1_uniform`` (one keep ratio for
every unit, channels by filter L1 norm, Li et al. 2017) and ``pass_noprompt``
(the same hyper-network with the prompt fixed at zero: the learned-prompt-free
ablation).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from compbench.registry import Registry
from compbench.vision import channels as C

METHODS: Registry = Registry("channel-sparsity method")


class Prompt(nn.Module):
    """Additive pad prompt: learned pixels on a ``pad``-wide border of the image."""

    def __init__(self, shape, pad: int, learn: bool = True):
        super().__init__()
        c, h, w = shape
        if not 0 < 2 * pad < min(h, w):
            raise ValueError(f"prompt pad={pad} must leave an interior in a {h}x{w} image (0 < 2*pad < {min(h, w)})")
        border = torch.ones(1, h, w)
        border[:, pad : h - pad, pad : w - pad] = 0
        self.register_buffer("border", border)
        self.pixels = nn.Parameter(torch.zeros(c, h, w), requires_grad=learn)

    def forward(self, x):
        return x + (self.pixels * self.border).unsqueeze(0)


N_CHANNEL_FEATS = 6
N_LAYER_FEATS = 3


def weight_features(model: nn.Module) -> list[torch.Tensor]:
    """Per unit ``[C_l, 4]``: filter L1, filter L2, |BN gamma|, consumer input-slice L1 (each / layer mean)."""
    mods = dict(model.named_modules())
    out = []
    for u in C.units(model):
        w = mods[u.conv_out].weight.detach()
        wi = mods[u.conv_in].weight.detach()
        f = torch.stack(
            [
                w.abs().flatten(1).sum(1),
                w.flatten(1).norm(dim=1),
                mods[u.bn].weight.detach().abs(),
                wi.abs().transpose(0, 1).flatten(1).sum(1),
            ],
            1,
        )
        out.append(f / f.mean(0, keepdim=True).clamp_min(1e-12))
    return out


def activation_features(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Per unit ``[C_l, 2]``: mean and std over (batch, space) of relu(BN output) on ``x`` (each / layer mean).
    Differentiable with respect to ``x`` (so to the prompt); the model's weights are not updated."""
    mods = dict(model.named_modules())
    acts = {}
    hs = [mods[u.bn].register_forward_hook(lambda m, i, o, n=u.name: acts.__setitem__(n, F.relu(o))) for u in C.units(model)]
    try:
        model(x)
    finally:
        for h in hs:
            h.remove()
    out = []
    for u in C.units(model):
        a = acts[u.name].transpose(0, 1).flatten(1)  # [C, B*H*W]
        f = torch.stack([a.mean(1), a.std(1)], 1)
        out.append(f / f.mean(0, keepdim=True).clamp_min(1e-6))
    return out


class HyperNet(nn.Module):
    """Channel encoder + LSTM cell over layers -> per-layer keep ratio and per-channel scores."""

    def __init__(self, hidden: int = 32, k_min: float = 0.05, init_keep: float = 0.5):
        super().__init__()
        self.k_min = k_min
        self.enc = nn.Sequential(nn.Linear(N_CHANNEL_FEATS, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.score = nn.Linear(hidden, 1)
        self.cell = nn.LSTMCell(hidden + N_LAYER_FEATS + 1, hidden)
        self.head = nn.Linear(hidden, 1)
        q = min(max((init_keep - k_min) / (1 - k_min), 1e-3), 1 - 1e-3)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, float(torch.logit(torch.tensor(q))))

    def forward(self, chan_feats: list[torch.Tensor], layer_feats: torch.Tensor):
        """chan_feats[l]: [C_l, N_CHANNEL_FEATS]; layer_feats: [L, N_LAYER_FEATS] -> (keep [L], scores list)."""
        h = layer_feats.new_zeros(1, self.cell.hidden_size)
        c = torch.zeros_like(h)
        k_prev = layer_feats.new_ones(1, 1)
        keeps, scores = [], []
        for l, f in enumerate(chan_feats):
            e = self.enc(f)
            scores.append(self.score(e).squeeze(-1))
            z = torch.cat([e.mean(0, keepdim=True), layer_feats[l : l + 1], k_prev], 1)
            h, c = self.cell(z, (h, c))
            k = self.k_min + (1 - self.k_min) * torch.sigmoid(self.head(h))
            keeps.append(k.view(()))
            k_prev = k
        return torch.stack(keeps), scores


def soft_masks(keep: torch.Tensor, scores: list[torch.Tensor], tau: float, temp: float) -> list[torch.Tensor]:
    """m_lc = σ((k_l − ρ_lc − 0.5/C_l)·C_l/T), ρ_lc the soft rank (fraction of channels scoring higher)."""
    out = []
    for k, s in zip(keep, scores):
        n = s.numel()
        diff = torch.sigmoid((s.view(1, -1) - s.view(-1, 1)) / tau)  # [c, j]: j above c
        rank = (diff.sum(1) - 0.5) / n  # minus the self term σ(0) = 0.5
        out.append(torch.sigmoid((k - rank - 0.5 / n) * n / temp))
    return out


def layer_features(model: nn.Module, flops: C.UnitFlops) -> torch.Tensor:
    L = len(flops.C)
    share = torch.zeros(L)
    for wm, bm, o, i in flops.terms:
        for u in (o, i):
            if u is not None:
                share[u] += (wm + bm) / flops.dense
    pos = torch.arange(L, dtype=torch.float32) / max(1, L - 1)
    width = torch.log(torch.tensor(flops.C, dtype=torch.float32)) / 6.0
    return torch.stack([pos, width, share], 1)


def train_hypernet(model, x, y, input_shape, target: float, cfg: dict, prompt: bool, seed: int, log=None):
    """Train the prompt and hyper-network on the frozen dense ``model``; returns (keep ratios, scores, history)."""
    from tqdm import tqdm

    device = next(model.parameters()).device
    torch.manual_seed(int(seed))
    g = torch.Generator().manual_seed(int(seed))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    flops = C.UnitFlops(model, input_shape)
    wf = [f.to(device) for f in weight_features(model)]
    lf = layer_features(model, flops).to(device)
    P = Prompt(input_shape, cfg["prompt_pad"], learn=prompt).to(device)
    H = HyperNet(cfg["hidden"], cfg["k_min"], init_keep=target**0.5).to(device)
    params = list(H.parameters()) + ([P.pixels] if prompt else [])
    opt = torch.optim.Adam(params, lr=cfg["lr"])
    plr = cfg["prompt_lr"]
    if prompt:
        opt = torch.optim.Adam([{"params": list(H.parameters())}, {"params": [P.pixels], "lr": plr}], lr=cfg["lr"])
    hist = []
    bs = cfg["batch_size"]
    steps = cfg["steps"]
    for step in tqdm(range(steps), desc=f"hypernet prompt={prompt}", mininterval=5):
        idx = torch.randint(0, len(x), (bs,), generator=g)
        xb, yb = x[idx].to(device), y[idx].to(device)
        xp = P(xb)
        af = activation_features(model, xp)
        feats = [torch.cat([w, a], 1) for w, a in zip(wf, af)]
        keep, scores = H(feats, lf)
        temp = cfg["temp_start"] * (cfg["temp_end"] / cfg["temp_start"]) ** (step / max(1, steps - 1))
        masks = soft_masks(keep, scores, cfg["tau"], temp)
        logits = C.masked_forward(model, xp, masks)
        ce = F.cross_entropy(logits, yb)
        kc = [m.sum() for m in masks]  # soft kept-channel counts
        ratio = flops(kc) / flops.dense
        loss = ce + cfg["flops_weight"] * (ratio - target) ** 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist.append({"step": step, "ce": float(ce.detach()), "flops_ratio": float(ratio.detach()), "loss": float(loss.detach())})
        if log and (step % max(1, steps // 5) == 0 or step == steps - 1):
            log.info(
                "hypernet step %d: ce %.4f flops %.3f (target %.3f) keep %s",
                step,
                hist[-1]["ce"],
                hist[-1]["flops_ratio"],
                target,
                [round(float(k), 3) for k in keep.detach()],
            )
    with torch.no_grad():
        xp = P(x[: cfg["batch_size"]].to(device))
        feats = [torch.cat([w, a], 1) for w, a in zip(wf, activation_features(model, xp))]
        keep, scores = H(feats, lf)
    for p in model.parameters():
        p.requires_grad_(True)
    return keep.cpu().tolist(), [s.cpu() for s in scores], hist, P.pixels.detach().cpu()


def _select(scores: list[torch.Tensor], counts: list[int]) -> list[torch.Tensor]:
    return [torch.topk(s, k).indices.sort().values for s, k in zip(scores, counts)]


@METHODS.register("l1_uniform")
def l1_uniform(model, x, y, input_shape, target, cfg, seed, log=None):
    """One keep ratio for every unit (the budget's), channels by filter L1 norm (Li et al. 2017)."""
    flops = C.UnitFlops(model, input_shape)
    counts = C.counts_for_budget(flops, [1.0] * len(flops.C), target)
    scores = [f[:, 0] for f in weight_features(model)]
    return _select(scores, counts), {"ratios": [1.0] * len(counts), "history": []}


def _pass(model, x, y, input_shape, target, cfg, seed, log, prompt):
    keep, scores, hist, pixels = train_hypernet(model, x, y, input_shape, target, cfg, prompt, seed, log)
    flops = C.UnitFlops(model, input_shape)
    counts = C.counts_for_budget(flops, keep, target)
    return _select(scores, counts), {"ratios": keep, "history": hist, "prompt": pixels}


@METHODS.register("pass")
def pass_prompt(model, x, y, input_shape, target, cfg, seed, log=None):
    """PASS: learned visual prompt + weight statistics -> recurrent hyper-network."""
    return _pass(model, x, y, input_shape, target, cfg, seed, log, prompt=True)


@METHODS.register("pass_noprompt")
def pass_noprompt(model, x, y, input_shape, target, cfg, seed, log=None):
    """Ablation: the same hyper-network with no learned prompt (plain images)."""
    return _pass(model, x, y, input_shape, target, cfg, seed, log, prompt=False)

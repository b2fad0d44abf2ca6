"""Layerwise channel sparsity for structural pruning: PASS, its ablations and a baseline.

PASS (Huang et al., "(PASS) Visual Prompt Locates Good Structure Sparsity
through a Recurrent HyperNetwork", arXiv 2407.17412, CPAL 2026): a recurrent
hyper-network (an LSTM over the prunable layers) reads each layer's weight
statistics, starts from a state that a prompt encoder computes from a learned
*visual prompt*, and emits per-channel scores through a linear mapper; the
scores are binarised with a straight-through estimator and the per-layer
sparsity follows from *global* pruning over all layers' scores. Hyper-network,
prompt encoder and prompt are trained jointly on the frozen dense network; the
sub-network is then removed physically and fine-tuned. The reference code
(github.com/UNITES-Lab/PASS) could not be read here (no stored copy), nor the
paper's method section beyond its abstract and a summary of it (so the comments
below name the paper's parts, not its equation numbers); this is
our reading of the paper, built like the hyper-network that PASS's recurrent
design follows (Gao et al., CVPR 2020, ``HyperStructure``, read in
github.com/Alii-Ganjj/InterpretationsSteeredPruning ``Models/hypernet.py``: a
recurrent net over the layers, per-layer linear maps from its states to channel
logits, ``hard = (σ ≥ 0.5)`` with straight-through gradients), and the pad
prompt of the same lab's VPNs code (github.com/UNITES-Lab/VPNs
``visual_prompt.py``: zero-initialised, added to the image). The choices we had to make:

* **Prompt** V (:class:`Prompt`): additive pad prompt (learned pixels on a
  ``pad``-wide border, zero inside, initialised at zero as in VPNs), added to
  every image the frozen dense network sees during the search.
* **Prompt encoder** g_ω (:class:`PromptEncoder`): two stride-2 convolutions,
  average pooling to 2×2 and a linear layer map V to the LSTM's initial state
  ``(h_0, c_0)`` (``h_0 = tanh(·)``). Paper: "the visual-prompt encoder
  initialises the LSTM".
* **Weight statistics** W^(l) (the LSTM's input at step l): per output channel
  of the unit, filter L1 and L2 norm, |BN γ| and the consuming conv's
  input-slice L1 norm, each divided by its layer mean
  (:func:`weight_features`), flattened and embedded by a per-layer linear layer.
* **Recurrence and linear mapper** (:class:`RecurrentHyperNet`):
  ``(h_l, c_l) = LSTMCell(E_l vec(W^(l)), (h_{l-1}, c_{l-1}))``, channel scores
  ``s_l = A_l · relu(LayerNorm(h_l)) + b_l`` (A_l: hidden → C_l, one per layer,
  as HyperStructure's ``mh_fc``).
* **Global pruning** (:func:`global_pruning`): all channels of all units in one
  descending order of score; the longest prefix whose network fits the MACs
  budget is kept (every unit keeps at least its top channel), i.e. one
  threshold t over all scores: per-layer sparsity is an outcome, not an output.
* **Straight-through masks** (:func:`straight_through_masks`): forward
  ``m = 1[s ≥ t]`` exactly binary; backward ``∂m/∂s = σ'(s − t)`` (the
  hard-concrete estimator of HyperStructure without its Gumbel noise, which the
  paper does not mention).
* **Objective**: ``CE(f(x + V; W ⊙ M), y)`` over θ (hyper-network), ω (prompt
  encoder) and V; the dense weights are frozen. No FLOPs penalty: global pruning
  meets the budget exactly at every step.
* **Hard sub-network**: the masks of the final scores at the budget; the prompt
  is used to *find* the structure only (the pruned network is fine-tuned and
  evaluated on plain images).

Ablations and baseline (same budget, same fine-tuning):

* ``pass_noprompt``: the same hyper-network without a prompt: LSTM from a zero
  state, plain images.
* ``pass_actstats``: compbench's first reading (before issue 19), kept for
  comparison: a shared channel encoder over weight *and* prompted-activation
  statistics gives scores, an LSTM from a zero state over the layers emits a
  keep ratio per layer, soft-rank sigmoid masks and a FLOPs penalty; ratios
  rescaled to the budget (:func:`compbench.vision.channels.counts_for_budget`),
  top-score channels per layer. The prompt enters only through the activation
  statistics and the masked network's loss.
* ``l1_uniform``: one keep ratio for every unit (the budget's), channels by
  filter L1 norm (Li et al. 2017).
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


N_WEIGHT_FEATS = 4  # weight_features: filter L1, filter L2, |BN gamma|, consumer input-slice L1
N_CHANNEL_FEATS = 6  # pass_actstats: weight features + 2 activation features
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


# ---------------------------------------------------------------- PASS (the paper's version)


class PromptEncoder(nn.Module):
    """g_ω: visual prompt V ``[c, h, w]`` -> the LSTM's initial state ``(h_0, c_0)``, each ``[1, hidden]``
    (paper, method: "the visual-prompt encoder g_ω initialises the LSTM"; its layers are our choice)."""

    def __init__(self, in_ch: int, hidden: int, width: int = 16):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, width, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, 2, 1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.out = nn.Linear(4 * width, 2 * hidden)

    def forward(self, V: torch.Tensor):
        h, c = self.out(self.conv(V.unsqueeze(0))).chunk(2, dim=1)
        return torch.tanh(h), c


class RecurrentHyperNet(nn.Module):
    """PASS's hyper-network: prompt encoder -> initial LSTM state; LSTM over the units reading
    their weight statistics; a per-layer linear mapper from the LSTM state to channel scores
    (paper, method: masks M^(l) from weight statistics W^(l) and prompt V, recurrently; the masked
    weights are Ŵ^(l) = M^(l-1) ⊗ W^(l) ⊗ M^(l), which :func:`compbench.vision.channels.masked_forward`
    realises by masking unit l's BN output, i.e. conv_out's outputs and conv_in's inputs)."""

    def __init__(self, widths: list[int], hidden: int = 32, in_ch: int = 3):
        super().__init__()
        self.widths = list(widths)
        self.prompt_encoder = PromptEncoder(in_ch, hidden)
        self.embed = nn.ModuleList(nn.Linear(c * N_WEIGHT_FEATS, hidden) for c in self.widths)  # E_l
        self.cell = nn.LSTMCell(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.mapper = nn.ModuleList(nn.Linear(hidden, c) for c in self.widths)  # A_l, b_l

    def initial_state(self, V: torch.Tensor | None, like: torch.Tensor):
        """``(h_0, c_0) = g_ω(V)``; zeros without a prompt (the ``pass_noprompt`` ablation)."""
        if V is None:
            h = like.new_zeros(1, self.cell.hidden_size)
            return h, torch.zeros_like(h)
        return self.prompt_encoder(V)

    def forward(self, wstats: list[torch.Tensor], V: torch.Tensor | None = None) -> list[torch.Tensor]:
        """wstats[l]: ``[C_l, N_WEIGHT_FEATS]``; V: the prompt ``[c, h, w]`` or None -> scores ``[C_l]`` per unit."""
        if [len(f) for f in wstats] != self.widths:
            raise ValueError(f"weight statistics for widths {[len(f) for f in wstats]}, hyper-network built for {self.widths}")
        h, c = self.initial_state(V, wstats[0])
        scores = []
        for emb, mapper, f in zip(self.embed, self.mapper, wstats):
            h, c = self.cell(emb(f.reshape(1, -1)), (h, c))
            scores.append(mapper(F.relu(self.norm(h))).squeeze(0))
        return scores


def global_pruning(scores: list[torch.Tensor], flops: C.UnitFlops, target: float):
    """Global pruning at a MACs budget: the channels of all units in one descending order of score
    (ties by position, stable); keep the longest prefix whose network has MACs <= ``target`` x dense,
    every unit keeping at least its top channel. Returns (hard 0/1 masks per unit, threshold t): the
    kept channels are exactly those with ``s >= t`` plus each unit's top channel (paper, method: "global
    pruning determines the layer-wise sparsity"; the MACs budget as the stopping rule is ours, so that every
    method is compared at equal MACs). The integer counts need the scores on the host: one small copy per step."""
    flat = torch.cat([s.detach() for s in scores]).double().cpu()
    layer = torch.cat([torch.full((len(s),), i, dtype=torch.long) for i, s in enumerate(scores)])
    L, n = len(scores), len(flat)
    budget = target * flops.dense
    if flops([1] * L) > budget:
        raise ValueError(
            f"MACs target {target} is below the smallest network with one channel per unit ({flops([1] * L) / flops.dense:.4f} x dense)"
        )
    order = torch.sort(flat, descending=True, stable=True).indices

    def counts(k: int) -> list[int]:
        return torch.bincount(layer[order[:k]], minlength=L).clamp_min(1).tolist()

    lo, hi = 0, n  # counts(lo) fits; find the largest k that fits (MACs grow with k)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if flops(counts(mid)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    keep = torch.zeros(n, dtype=torch.bool)
    keep[order[:lo]] = True
    off = 0
    for s in scores:  # each unit's top channel
        keep[off + int(torch.argmax(s.detach().cpu()))] = True
        off += len(s)
    above = float(flat[order[lo - 1]]) if lo > 0 else float(flat.max()) + 1.0
    below = float(flat[order[lo]]) if lo < n else float(flat.min()) - 1.0
    t = (above + below) / 2
    return [m.to(s.device, torch.float32) for m, s in zip(keep.split([len(s) for s in scores]), scores)], t


def straight_through_masks(scores: list[torch.Tensor], hard: list[torch.Tensor], t: float) -> list[torch.Tensor]:
    """Forward: the hard masks, exactly 0/1 (``soft - soft.detach()`` is exactly 0); backward:
    ``∂m/∂s = σ'(s − t)`` (straight through the sigmoid, the hard-concrete estimator)."""
    out = []
    for s, m in zip(scores, hard):
        soft = torch.sigmoid(s - t)
        out.append(m + (soft - soft.detach()))
    return out


class _Search:
    """What the hyper-network searches share: seeds, the frozen dense model (trainable again on exit),
    its MACs as a function of kept channels, the weight statistics, the prompt, batches, Adam."""

    def __init__(self, model, x, y, input_shape, cfg: dict, prompt: bool, seed: int):
        torch.manual_seed(int(seed))
        self.g = torch.Generator().manual_seed(int(seed))
        self.model, self.x, self.y, self.cfg, self.prompt = model, x, y, cfg, prompt
        self.device = next(model.parameters()).device
        self.flops = C.UnitFlops(model, input_shape)
        self.wf = [f.to(self.device) for f in weight_features(model)]
        self.P = Prompt(input_shape, cfg["prompt_pad"], learn=prompt).to(self.device)

    def __enter__(self):
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        return self

    def __exit__(self, *exc):
        for p in self.model.parameters():
            p.requires_grad_(True)

    def optimizer(self, H: nn.Module) -> torch.optim.Optimizer:
        groups = [{"params": list(H.parameters())}] + ([{"params": [self.P.pixels], "lr": self.cfg["prompt_lr"]}] if self.prompt else [])
        return torch.optim.Adam(groups, lr=self.cfg["lr"])

    def batch(self):
        idx = torch.randint(0, len(self.x), (self.cfg["batch_size"],), generator=self.g)
        return self.x[idx].to(self.device), self.y[idx].to(self.device)

    def steps(self, desc: str):
        from tqdm import tqdm

        return tqdm(range(self.cfg["steps"]), desc=f"{desc} prompt={self.prompt}", mininterval=5)


def train_pass(model, x, y, input_shape, target: float, cfg: dict, prompt: bool, seed: int, log=None):
    """Train prompt, prompt encoder and hyper-network on the frozen dense ``model`` at the MACs budget
    ``target``; returns (hard masks of the final scores, final scores, threshold, history, prompt pixels)."""
    with _Search(model, x, y, input_shape, cfg, prompt, seed) as S:
        flops, P = S.flops, S.P
        H = RecurrentHyperNet(flops.C, cfg["hidden"], input_shape[0]).to(S.device)
        opt = S.optimizer(H)
        V = (lambda: P.pixels * P.border) if prompt else (lambda: None)
        hist = []
        for step in S.steps("PASS hypernet"):
            xb, yb = S.batch()
            scores = H(S.wf, V())
            hard, t = global_pruning(scores, flops, target)
            ce = F.cross_entropy(C.masked_forward(model, P(xb), straight_through_masks(scores, hard, t)), yb)
            opt.zero_grad(set_to_none=True)
            ce.backward()
            opt.step()
            kept = [int(m.sum()) for m in hard]
            hist.append({"step": step, "ce": float(ce.detach()), "flops_ratio": flops(kept) / flops.dense, "threshold": t})
            if log and (step % max(1, cfg["steps"] // 5) == 0 or step == cfg["steps"] - 1):
                log.info(
                    "PASS step %d: ce %.4f flops %.3f (target %.3f) kept %s", step, hist[-1]["ce"], hist[-1]["flops_ratio"], target, kept
                )
        with torch.no_grad():
            scores = H(S.wf, V())
            hard, t = global_pruning(scores, flops, target)
    return [m.cpu() for m in hard], [s.cpu() for s in scores], t, hist, P.pixels.detach().cpu()


def _pass_global(model, x, y, input_shape, target, cfg, seed, log, prompt):
    hard, scores, t, hist, pixels = train_pass(model, x, y, input_shape, target, cfg, prompt, seed, log)
    keep = [torch.nonzero(m).flatten() for m in hard]
    ratios = [len(k) / len(m) for k, m in zip(keep, hard)]
    return keep, {"ratios": ratios, "history": hist, "prompt": pixels, "scores": scores, "threshold": t}


@METHODS.register("pass")
def pass_prompt(model, x, y, input_shape, target, cfg, seed, log=None):
    """PASS: visual prompt -> LSTM initial state; weight statistics -> LSTM -> linear mapper -> channel
    scores; straight-through binary masks; per-layer sparsity by global pruning at the MACs budget."""
    return _pass_global(model, x, y, input_shape, target, cfg, seed, log, prompt=True)


@METHODS.register("pass_noprompt")
def pass_noprompt(model, x, y, input_shape, target, cfg, seed, log=None):
    """Ablation: the same hyper-network without a visual prompt (zero initial LSTM state, plain images)."""
    return _pass_global(model, x, y, input_shape, target, cfg, seed, log, prompt=False)


# ---------------------------------------------------------------- pass_actstats (compbench's first reading)


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


class ActStatsHyperNet(nn.Module):
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


def train_actstats(model, x, y, input_shape, target: float, cfg: dict, prompt: bool, seed: int, log=None):
    """Train the prompt and :class:`ActStatsHyperNet` on the frozen dense ``model``; returns (keep ratios,
    scores, history, prompt pixels). Objective ``CE(f_m(x + P), y) + λ·(MACs(k)/MACs_dense − ρ_target)²``."""
    with _Search(model, x, y, input_shape, cfg, prompt, seed) as S:
        flops, P = S.flops, S.P
        lf = layer_features(model, flops).to(S.device)
        H = ActStatsHyperNet(cfg["hidden"], cfg["k_min"], init_keep=target**0.5).to(S.device)
        opt = S.optimizer(H)
        hist = []
        steps = cfg["steps"]
        for step in S.steps("actstats hypernet"):
            xb, yb = S.batch()
            xp = P(xb)
            feats = [torch.cat([w, a], 1) for w, a in zip(S.wf, activation_features(model, xp))]
            keep, scores = H(feats, lf)
            temp = cfg["temp_start"] * (cfg["temp_end"] / cfg["temp_start"]) ** (step / max(1, steps - 1))
            masks = soft_masks(keep, scores, cfg["tau"], temp)
            ce = F.cross_entropy(C.masked_forward(model, xp, masks), yb)
            ratio = flops([m.sum() for m in masks]) / flops.dense  # soft kept-channel counts
            loss = ce + cfg["flops_weight"] * (ratio - target) ** 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            hist.append({"step": step, "ce": float(ce.detach()), "flops_ratio": float(ratio.detach()), "loss": float(loss.detach())})
            if log and (step % max(1, steps // 5) == 0 or step == steps - 1):
                log.info(
                    "actstats step %d: ce %.4f flops %.3f (target %.3f) keep %s",
                    step,
                    hist[-1]["ce"],
                    hist[-1]["flops_ratio"],
                    target,
                    [round(float(k), 3) for k in keep.detach()],
                )
        with torch.no_grad():
            xp = P(x[: cfg["batch_size"]].to(S.device))
            keep, scores = H([torch.cat([w, a], 1) for w, a in zip(S.wf, activation_features(model, xp))], lf)
    return keep.cpu().tolist(), [s.cpu() for s in scores], hist, P.pixels.detach().cpu()


def _select(scores: list[torch.Tensor], counts: list[int]) -> list[torch.Tensor]:
    return [torch.topk(s, k).indices.sort().values for s, k in zip(scores, counts)]


@METHODS.register("pass_actstats")
def pass_actstats(model, x, y, input_shape, target, cfg, seed, log=None):
    """Ablation (compbench's reading before issue 19): prompt through activation statistics, zero
    initial LSTM state, learned per-layer keep ratios rescaled to the budget, soft-rank masks, FLOPs penalty."""
    keep, scores, hist, pixels = train_actstats(model, x, y, input_shape, target, cfg, True, seed, log)
    counts = C.counts_for_budget(C.UnitFlops(model, input_shape), keep, target)
    return _select(scores, counts), {"ratios": keep, "history": hist, "prompt": pixels}


# ---------------------------------------------------------------- baseline


@METHODS.register("l1_uniform")
def l1_uniform(model, x, y, input_shape, target, cfg, seed, log=None):
    """One keep ratio for every unit (the budget's), channels by filter L1 norm (Li et al. 2017)."""
    flops = C.UnitFlops(model, input_shape)
    counts = C.counts_for_budget(flops, [1.0] * len(flops.C), target)
    scores = [f[:, 0] for f in weight_features(model)]
    return _select(scores, counts), {"ratios": [1.0] * len(counts), "history": []}

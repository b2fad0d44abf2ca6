"""Convolutional networks with *structurally* prunable channels.

* :class:`SmallResNet` — the embedded default's ResNet-style CNN (written here:
  torchvision is not a dependency). Its blocks use torchvision's attribute
  names (``conv1/bn1/conv2/bn2``, ``downsample``), so the same pruning code
  handles torchvision ResNet-18/50 (real runs, :func:`build`).
* A *unit* is a set of channels that can be removed together: the output
  channels of ``conv_out`` (+ its BatchNorm) and the matching input channels
  of ``conv_in``. Choice (as in most ResNet channel pruning, PASS included as
  far as the paper says): the channels *inside* residual blocks are pruned;
  the residual stream's channels (stem, block outputs, downsample) are kept,
  so additions stay shape-compatible. VGG: every conv but the last.
* :func:`prune` removes channels physically (new, smaller Conv2d/BatchNorm2d),
  :func:`masked_forward` zeroes them in the dense network; the two agree
  exactly (tests).
* :func:`count_flops` counts multiply-accumulates (MACs) of every Conv2d and
  Linear from the architecture as it runs (hooks on a forward pass), so a
  pruned network's count comes from its real, smaller layers.
  :func:`unit_flops` is the same count as a function of per-unit kept
  channels (exact for any keep vector; used as a differentiable budget).
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """ResNet basic block; ``mid`` is the prunable inner width."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class SmallResNet(nn.Module):
    """stem conv3x3 -> stages of BasicBlocks (stride 2 from the 2nd stage) -> avgpool -> fc."""

    def __init__(self, widths=(16, 32, 64), blocks=(2, 2, 2), n_classes: int = 10, in_ch: int = 3):
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths {widths} and blocks {blocks} must be non-empty and of equal length")
        self.arch = {"widths": list(widths), "blocks": list(blocks), "n_classes": n_classes, "in_ch": in_ch}
        self.conv1 = nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for s, (w, b) in enumerate(zip(widths, blocks)):
            stage = []
            for i in range(b):
                stage.append(BasicBlock(cin, w, w, stride=2 if (s > 0 and i == 0) else 1))
                cin = w
            layers.append(nn.Sequential(*stage))
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, n_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(arch: dict) -> nn.Module:
    """A dense network from its description: ``{"kind": "small_resnet", ...}`` or a torchvision name."""
    kind = arch.get("kind", "small_resnet")
    if kind == "small_resnet":
        return SmallResNet(arch["widths"], arch["blocks"], arch["n_classes"], arch.get("in_ch", 3))
    try:  # real runs only
        import torchvision.models as tvm
    except ImportError as e:
        raise ImportError(f"model kind {kind!r} needs torchvision, which compbench does not pin; pip install torchvision") from e
    if not hasattr(tvm, kind):
        raise ValueError(
            f"unknown model kind {kind!r}; allowed: small_resnet or a torchvision.models name (resnet18, resnet50, vgg16_bn, ...)"
        )
    if not arch.get("weights"):
        return getattr(tvm, kind)(num_classes=arch["n_classes"])
    # ImageNet weights, downloaded by torchvision (hash checked) and read with
    # weights_only=True: tensors only, never an arbitrary unpickle (tvm.get_model(kind,
    # weights=...) would call torch.hub's loader with its default weights_only=False).
    # Then a fresh head for n_classes.
    enum = tvm.get_model_weights(kind)
    if arch["weights"] not in enum.__members__:
        raise ValueError(f"vision.pass.model.weights={arch['weights']!r} unknown for {kind}; allowed: {', '.join(enum.__members__)}")
    model = getattr(tvm, kind)()
    model.load_state_dict(enum[arch["weights"]].get_state_dict(progress=True, check_hash=True, weights_only=True))
    if hasattr(model, "fc"):
        model.fc = nn.Linear(model.fc.in_features, arch["n_classes"])
    else:
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, arch["n_classes"])
    return model


@dataclass
class Unit:
    """Channels removable together: outputs of ``conv_out``/``bn``, inputs of ``conv_in``."""

    name: str
    conv_out: str
    bn: str
    conv_in: str


def units(model: nn.Module) -> list[Unit]:
    """The prunable units of a ResNet-style (BasicBlock / Bottleneck) or VGG network, in forward order."""
    out = []
    for name, mod in model.named_modules():
        if hasattr(mod, "conv1") and hasattr(mod, "bn1") and hasattr(mod, "conv2") and name:
            out.append(Unit(f"{name}.conv1", f"{name}.conv1", f"{name}.bn1", f"{name}.conv2"))
            if hasattr(mod, "conv3"):  # Bottleneck: conv2 -> conv3 too
                out.append(Unit(f"{name}.conv2", f"{name}.conv2", f"{name}.bn2", f"{name}.conv3"))
    if not out and hasattr(model, "features"):  # VGG: conv, bn, relu (, pool) ...; the last conv is kept
        seq = [(f"features.{i}", m) for i, m in enumerate(model.features)]
        convs = [(n, i) for i, (n, m) in enumerate(seq) if isinstance(m, nn.Conv2d)]
        for (n, i), (n2, _) in zip(convs, convs[1:]):
            if i + 1 < len(seq) and isinstance(seq[i + 1][1], nn.BatchNorm2d):
                out.append(Unit(n, n, seq[i + 1][0], n2))
    if not out:
        raise ValueError(f"{type(model).__name__}: no prunable channel units found (expected ResNet blocks or a VGG `features` stack)")
    return out


def widths(model: nn.Module) -> list[int]:
    mods = dict(model.named_modules())
    return [mods[u.conv_out].out_channels for u in units(model)]


def prune(model: nn.Module, keep: list[torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with only the channels ``keep[l]`` (indices) of unit ``l``.

    Layers are replaced by smaller ones holding the kept slices: ``conv_out``
    keeps output filters, ``bn`` its per-channel affine and running stats,
    ``conv_in`` the matching input channels.
    """
    us = units(model)
    if len(keep) != len(us):
        raise ValueError(f"got {len(keep)} keep lists for {len(us)} prunable units")
    new = copy.deepcopy(model)
    mods = dict(new.named_modules())
    for u, idx in zip(us, keep):
        idx = torch.as_tensor(idx, dtype=torch.long).sort().values
        co, bn, ci = mods[u.conv_out], mods[u.bn], mods[u.conv_in]
        if idx.numel() < 1 or idx.max() >= co.out_channels or idx.unique().numel() != idx.numel():
            raise ValueError(f"unit {u.name}: keep indices must be 1..{co.out_channels} distinct channels < {co.out_channels}")
        c2 = nn.Conv2d(co.in_channels, idx.numel(), co.kernel_size, co.stride, co.padding, co.dilation, co.groups, co.bias is not None)
        c2.weight.data = co.weight.data[idx].clone()
        if co.bias is not None:
            c2.bias.data = co.bias.data[idx].clone()
        b2 = nn.BatchNorm2d(idx.numel(), eps=bn.eps, momentum=bn.momentum)
        for attr in ("weight", "bias", "running_mean", "running_var"):
            getattr(b2, attr).data = getattr(bn, attr).data[idx].clone()
        b2.num_batches_tracked = bn.num_batches_tracked.clone()
        i2 = nn.Conv2d(idx.numel(), ci.out_channels, ci.kernel_size, ci.stride, ci.padding, ci.dilation, ci.groups, ci.bias is not None)
        i2.weight.data = ci.weight.data[:, idx].clone()
        if ci.bias is not None:
            i2.bias.data = ci.bias.data.clone()
        for name, m, old in ((u.conv_out, c2, co), (u.bn, b2, bn), (u.conv_in, i2, ci)):
            _set(new, name, m.train(old.training))
        mods = dict(new.named_modules())
    return new.to(next(model.parameters()).device)


def _set(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


@contextlib.contextmanager
def masks_applied(model: nn.Module, masks: list[torch.Tensor]):
    """Within the block, unit ``l``'s BatchNorm output is multiplied by ``masks[l]``
    (per channel, soft or hard). A 0/1 mask is the dense stand-in for :func:`prune`:
    the following ReLU maps 0 to 0, so ``conv_in`` sees exactly the removed channels as zeros."""
    mods = dict(model.named_modules())
    handles = []
    for u, m in zip(units(model), masks):
        handles.append(mods[u.bn].register_forward_hook(lambda mod, inp, out, m=m: out * m.view(1, -1, 1, 1)))
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


def masked_forward(model: nn.Module, x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    with masks_applied(model, masks):
        return model(x)


def keep_to_masks(model: nn.Module, keep: list[torch.Tensor]) -> list[torch.Tensor]:
    dev = next(model.parameters()).device
    out = []
    for w, idx in zip(widths(model), keep):
        m = torch.zeros(w, device=dev)
        m[torch.as_tensor(idx, device=dev)] = 1.0
        out.append(m)
    return out


def count_flops(model: nn.Module, input_shape) -> dict:
    """MACs and parameters of one forward pass on one input of ``input_shape`` (C, H, W).

    Conv2d: out_h * out_w * out_ch * (in_ch / groups) * kh * kw (+ out elements if biased);
    Linear: in * out (+ out if biased). BatchNorm, ReLU, pooling and additions are not counted
    (they are a few per cent of a conv net and unaffected by the method choice).
    """
    macs = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs[0] += out[0].numel() * k + (out[0].numel() if m.bias is not None else 0)

    def lin_hook(m, inp, out):
        macs[0] += m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)

    hs = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hs.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hs.append(m.register_forward_hook(lin_hook))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for h in hs:
            h.remove()
        model.train(was)
    return {"macs": int(macs[0]), "params": sum(p.numel() for p in model.parameters())}


class UnitFlops:
    """MACs as a function of per-unit kept channels ``k`` (floats allowed):
    ``fixed + sum_conv full_macs(conv) * in_frac(conv) * out_frac(conv)``, where a
    conv's input / output fraction is ``k_l / C_l`` of the unit feeding / fed by it
    (1 if none). Linear in each unit's ``k`` for ResNet basic blocks, bilinear for
    chains (Bottleneck, VGG); exact for integer ``k`` (tested against :func:`count_flops`)."""

    def __init__(self, model: nn.Module, input_shape):
        us = units(model)
        self.C = widths(model)
        per = {}
        hs = []
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                hs.append(m.register_forward_hook(lambda m, i, o, name=name: per.__setitem__(name, _macs(m, o))))
        was = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
        for h in hs:
            h.remove()
        model.train(was)
        self.terms = []  # (weight MACs, bias adds, out_unit or None, in_unit or None)
        out_of = {u.conv_out: i for i, u in enumerate(us)}
        in_of = {u.conv_in: i for i, u in enumerate(us)}
        self.fixed = 0
        for name, (wm, bm) in per.items():
            o, i = out_of.get(name), in_of.get(name)
            if o is None and i is None:
                self.fixed += wm + bm
            else:
                self.terms.append((wm, bm, o, i))
        self.dense = self.fixed + sum(t[0] + t[1] for t in self.terms)

    def __call__(self, k) -> torch.Tensor | float:
        total = self.fixed
        for wm, bm, o, i in self.terms:
            fo = k[o] / self.C[o] if o is not None else 1.0
            fi = k[i] / self.C[i] if i is not None else 1.0
            total = total + wm * fo * fi + bm * fo  # a bias add per kept output
        return total

    def per_channel(self) -> list[float]:
        """Dense MACs attributable to one channel of each unit (for budget tolerances)."""
        out = [0.0] * len(self.C)
        for wm, bm, o, i in self.terms:
            for u in (o, i):
                if u is not None:
                    out[u] += (wm + bm) / self.C[u]
        return out


def _macs(m, out) -> tuple[int, int]:
    """(weight MACs, bias adds) of one layer for one input."""
    if isinstance(m, nn.Conv2d):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        return out[0].numel() * k, (out[0].numel() if m.bias is not None else 0)
    return m.in_features * m.out_features, (m.out_features if m.bias is not None else 0)


def counts_for_budget(flops: UnitFlops, ratios: list[float], target: float) -> list[int]:
    """Integer kept channels per unit, proportional to ``ratios`` scaled by one global factor,
    with the largest MACs <= ``target`` * dense (bisection; every unit keeps >= 1 channel).
    Every method goes through this, so all are compared at (nearly) equal FLOPs."""
    r = torch.as_tensor(ratios, dtype=torch.float64).clamp_min(1e-6)

    def counts(s):
        return [int(min(c, max(1, round(float(s * ri) * c)))) for ri, c in zip(r, flops.C)]

    lo, hi = 0.0, float(1.0 / r.min())
    for _ in range(60):
        mid = (lo + hi) / 2
        if flops(counts(mid)) <= target * flops.dense:
            lo = mid
        else:
            hi = mid
    best = counts(lo)
    # greedy top-up: add single channels (cheapest first-come order by ratio deficit) while under budget
    improved = True
    while improved:
        improved = False
        order = sorted(range(len(best)), key=lambda i: best[i] / flops.C[i] - float(r[i] * lo))
        for i in order:
            if best[i] < flops.C[i]:
                trial = list(best)
                trial[i] += 1
                if flops(trial) <= target * flops.dense:
                    best, improved = trial, True
                    break
    return best


def latency_ms(model: nn.Module, input_shape, batch: int = 256, repeats: int = 10, device=None) -> float:
    """Median wall time (ms) of a forward pass on a batch, after two warm-up passes."""
    device = device or next(model.parameters()).device
    x = torch.randn(batch, *input_shape, device=device)
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1e3)
    return float(torch.tensor(times).median())


def train(model, x, y, epochs: int, lr: float, batch_size: int, seed: int, log=None, weight_decay: float = 5e-4, desc="train"):
    """SGD (momentum 0.9, cosine schedule) on ``(x, y)``; returns per-epoch mean losses."""
    from tqdm import tqdm

    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    steps = epochs * max(1, len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps), pct_start=0.15)
    losses = []
    model.train()
    for ep in tqdm(range(epochs), desc=desc, mininterval=5):
        perm = torch.randperm(len(x), generator=g)
        tot, n = 0.0, 0
        for b in range(len(x) // batch_size):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            xb, yb = _augment(x[idx], g).to(device), y[idx].to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot, n = tot + float(loss.detach()), n + 1
        losses.append(tot / max(1, n))
        if log:
            log.info("%s epoch %d: loss %.4f", desc, ep, losses[-1])
    model.eval()
    return losses


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random horizontal flips (label-preserving for every generated pattern family)."""
    flip = torch.rand(len(x), generator=g) < 0.5
    x = x.clone()
    x[flip] = x[flip].flip(-1)
    return x


@torch.no_grad()
@torch.no_grad()
def correct(model, x, y, batch_size: int = 512) -> torch.Tensor:
    """Per-image correctness (bool [n]) of the model's top-1 class."""
    device = next(model.parameters()).device
    model.eval()
    return torch.cat(
        [model(x[b : b + batch_size].to(device)).argmax(-1).cpu() == y[b : b + batch_size] for b in range(0, len(x), batch_size)]
    )


def accuracy(model, x, y, batch_size: int = 512) -> float:
    return int(correct(model, x, y, batch_size).sum()) / len(x)

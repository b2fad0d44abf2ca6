"""An offline image classification set generated here, with class structure.

The embedded default of the PASS line needs images without a download. We do
NOT use scikit-learn's digits (scikit-learn is not a dependency): every image is
generated from a seeded ``torch.Generator``.

Class ``c`` (``n_classes`` <= 2 * len(PATTERNS)) is a texture *pattern*
(``PATTERNS[c % len(PATTERNS)]``: horizontal / vertical / diagonal stripes,
checkerboard, concentric rings, dots) in one of two *colour families*
(``c // len(PATTERNS)``: warm or cool foreground). Nuisances that do not carry
the label: spatial frequency, phase, ring centre, contrast, background colour,
a random occluding patch and pixel noise. So the classes are separable only by
combining colour with an orientation/frequency-selective texture, which a
small CNN learns in a few epochs but not perfectly (accuracy well below 100 %
at the default noise), leaving room for pruning to hurt.

Real runs (``config/paper_pass.yaml``) read the paper's data sets instead
(:func:`load_real`).
"""

from __future__ import annotations

import math

import torch

PATTERNS = ("hstripes", "vstripes", "diagonal", "checker", "rings", "dots")


def _pattern(kind: str, size: int, freq: torch.Tensor, phase: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """[n, size, size] in [0, 1] for a batch of ``n`` nuisance draws."""
    n = freq.shape[0]
    ax = torch.arange(size, dtype=torch.float32) / size
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    yy, xx = yy.expand(n, size, size), xx.expand(n, size, size)
    f = freq.view(n, 1, 1) * 2 * math.pi
    p = phase.view(n, 1, 1)
    if kind == "hstripes":
        z = torch.sin(f * yy + p)
    elif kind == "vstripes":
        z = torch.sin(f * xx + p)
    elif kind == "diagonal":
        z = torch.sin(f * (xx + yy) / math.sqrt(2) + p)
    elif kind == "checker":
        z = torch.sin(f * xx + p) * torch.sin(f * yy + p)
        z = torch.sign(z) * z.abs().sqrt()
    elif kind == "rings":
        cy, cx = centre[:, 0].view(n, 1, 1), centre[:, 1].view(n, 1, 1)
        z = torch.sin(f * torch.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) + p)
    elif kind == "dots":
        z = torch.cos(f * xx + p) + torch.cos(f * yy + p) - 1.0
        z = z.clamp(-1, 1)
    else:  # pragma: no cover - PATTERNS is closed
        raise ValueError(kind)
    return (z + 1) / 2


def generate(n: int, n_classes: int = 10, size: int = 16, noise: float = 0.25, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images ``[n, 3, size, size]`` (float32, roughly zero-mean) and labels ``[n]`` (int64).

    Labels are balanced (``i % n_classes``) then shuffled; the draw is a pure
    function of the arguments.
    """
    if not 2 <= n_classes <= 2 * len(PATTERNS):
        raise ValueError(f"n_classes={n_classes}: allowed 2..{2 * len(PATTERNS)} (patterns x 2 colour families)")
    if size < 8:
        raise ValueError(f"size={size}: images need at least 8x8 pixels")
    if n < n_classes:
        raise ValueError(f"n={n} is smaller than n_classes={n_classes}")
    g = torch.Generator().manual_seed(int(seed))
    labels = torch.arange(n) % n_classes
    labels = labels[torch.randperm(n, generator=g)]
    images = torch.empty(n, 3, size, size)
    for c in range(n_classes):
        idx = (labels == c).nonzero().flatten()
        m = idx.numel()
        kind, family = PATTERNS[c % len(PATTERNS)], c // len(PATTERNS)
        freq = 2.0 + 2.5 * torch.rand(m, generator=g)
        phase = 2 * math.pi * torch.rand(m, generator=g)
        centre = torch.rand(m, 2, generator=g)
        z = _pattern(kind, size, freq, phase, centre)  # [m, s, s]
        # foreground colour: warm (red-dominant) or cool (blue-dominant), random mix
        base = torch.rand(m, 3, generator=g) * 0.5
        if family == 0:
            base[:, 0] += 0.5
        else:
            base[:, 2] += 0.5
        fg = base
        bg = torch.rand(m, 3, generator=g) * 0.6
        contrast = 0.5 + 0.5 * torch.rand(m, 1, 1, 1, generator=g)
        img = bg.view(m, 3, 1, 1) + contrast * z.unsqueeze(1) * (fg.view(m, 3, 1, 1) - bg.view(m, 3, 1, 1))
        # an occluding patch of random colour
        ph = max(2, size // 4)
        oy = torch.randint(0, size - ph + 1, (m,), generator=g)
        ox = torch.randint(0, size - ph + 1, (m,), generator=g)
        col = torch.rand(m, 3, generator=g)
        for i in range(m):
            img[i, :, oy[i] : oy[i] + ph, ox[i] : ox[i] + ph] = col[i].view(3, 1, 1)
        img = img + noise * torch.randn(img.shape, generator=g)
        images[idx] = img
    return (images - 0.5) / 0.3, labels


def load_real(spec: dict, split: str, size: int, limit: int | None = None):  # pragma: no cover - needs the hub or a local data set
    """A real image set by path (an ImageFolder tree) or HF id, resized to ``size``; the first
    ``limit`` examples of a seeded shuffle (tensors are held in memory: cap them for 224-px sets).

    Returns ``(images, labels)`` tensors. Needs torchvision (and ``datasets`` for
    a hub id); both imports are lazy and fail with a message saying so.
    """
    try:
        from torchvision import datasets as tvd
        from torchvision import transforms as T
    except ImportError as e:
        raise ImportError("real image data sets need torchvision, which compbench does not pin; pip install torchvision") from e
    tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    if "path" in spec:
        ds = tvd.ImageFolder(f"{spec['path']}/{split}", transform=tf)
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(spec.get("seed", 0)))[:limit]
        xs, ys = zip(*[ds[int(i)] for i in order])
        return torch.stack(xs), torch.tensor(ys)
    try:
        from datasets import load_dataset

        ds = load_dataset(spec["id"], split=spec.get("splits", {}).get(split, split)).shuffle(seed=spec.get("seed", 0))
        if limit:
            ds = ds.select(range(min(limit, len(ds))))
    except Exception as e:
        raise RuntimeError(f"could not load image data set {spec['id']!r} ({split}) from the Hugging Face hub: {e}") from e
    xs = torch.stack([tf(r[spec.get("image_key", "image")].convert("RGB")) for r in ds])
    ys = torch.tensor([r[spec.get("label_key", "label")] for r in ds])
    return xs, ys

"""The masked-variant artifact: a pruned model stored as its base plus masks.

Layout of a variant directory::

    variant.json        {"kind": "masked", "base": <base model dir>, ...recipe...}
    masks.safetensors   one uint8 tensor of packed bits (numpy.packbits, 1 = kept)
                        per pruned linear; the shapes are in the file's metadata
    values.safetensors  only for methods that change values (SparseGPT): the
                        updated tensors of those linears

Loading applies masks (and values) to a fresh copy of the base model; nothing
in the base directory is rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from compbench.artifacts import CorruptArtifact, atomic_path, load_tensors, read_json, save_tensors, write_json
from compbench.variants import KINDS


def pack(keep: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.packbits(keep.reshape(-1).cpu().numpy().astype(np.uint8)))


def unpack(packed: torch.Tensor, shape) -> torch.Tensor:
    n = int(np.prod(shape))
    bits = np.unpackbits(packed.cpu().numpy())
    if bits.size < n or bits.size - n >= 8:
        raise CorruptArtifact(f"packed mask of {packed.numel()} bytes does not hold shape {tuple(shape)}")
    return torch.from_numpy(bits[:n].astype(bool)).reshape(tuple(shape))


def save(out_dir, base_dir, masks: dict[str, torch.Tensor], changed: dict[str, torch.Tensor], recipe: dict) -> None:
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        shapes = {k: list(v.shape) for k, v in masks.items()}
        save_tensors(tmp / "masks.safetensors", {k: pack(v) for k, v in masks.items()}, {"shapes": json.dumps(shapes)})
        if changed:
            save_tensors(tmp / "values.safetensors", changed)
        write_json(tmp / "variant.json", {"kind": "masked", "base": str(base_dir), **recipe})


def load_masks(variant_dir) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    path = Path(variant_dir) / "masks.safetensors"
    packed = load_tensors(path)
    try:
        with safe_open(str(path), "pt") as f:
            shapes = json.loads(f.metadata()["shapes"])
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CorruptArtifact(f"{path}: mask shapes missing from the metadata ({e})") from e
    try:
        return {k: unpack(v, shapes[k]) for k, v in packed.items()}
    except (CorruptArtifact, KeyError) as e:
        raise CorruptArtifact(f"{path}: {e}") from e


def apply(model, variant_dir) -> None:
    masks = load_masks(variant_dir)
    values_path = Path(variant_dir) / "values.safetensors"
    values = load_tensors(values_path) if values_path.exists() else {}
    modules = dict(model.named_modules())
    for name, keep in masks.items():
        if name not in modules:
            raise CorruptArtifact(f"{variant_dir}: mask for {name!r}, which the base model does not have")
        W = modules[name].weight
        if tuple(W.shape) != tuple(keep.shape):
            raise CorruptArtifact(f"{variant_dir}: mask for {name!r} has shape {tuple(keep.shape)}, weight has {tuple(W.shape)}")
        with torch.no_grad():
            if name in values:
                W.copy_(values[name].to(W.dtype))
            W.mul_(keep.to(W.device, W.dtype))


@KINDS.register("masked")
def _load(path, manifest, device, dtype):
    from compbench.models import load

    model = load(manifest["base"], device=device, dtype=dtype)
    apply(model, path)
    return model


def sparsity(variant_dir) -> float:
    masks = load_masks(variant_dir)
    total = sum(m.numel() for m in masks.values())
    return 1.0 - sum(int(m.sum()) for m in masks.values()) / total


def manifest(variant_dir) -> dict:
    return read_json(Path(variant_dir) / "variant.json")

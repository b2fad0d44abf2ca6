"""The quantised-variant artifact: what a deployment of a weight-only quantised model stores.

Layout of a variant directory::

    variant.json        {"kind": "quant", "base": <dense model dir>, "method", "bits", "group_size", ...recipe;
                         "pruned": <masked variant dir>, for a model pruned, then quantised}
    codes.safetensors   per decoder linear <name> (rows × cols, groups of group_size columns):
                        <name>.codes   uint8, the b-bit codes packed (code i in bits i·b … i·b + b − 1, little-endian)
                        <name>.scale   float16, rows × groups
                        <name>.zero    uint8, rows × groups (an integer code)
                        <name>.smooth  float16, cols (AWQ only: weight = dequantised / smooth)
                        metadata: "shapes" (name -> [rows, cols]), "bits", "group_size"

Loading dequantises onto a fresh copy of the base model, W = scale · (code − zero)
[/ smooth], times the pruned variant's mask if there is one. Scales are float16, as
GPTQ / AWQ checkpoints store them: the loaded weights differ from the method's
in-memory float32 result by at most 2⁻¹¹ relative per weight (the scale's rounding;
docs/quant.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from compbench.artifacts import CorruptArtifact, atomic_path, check_record, load_tensors, save_tensors, write_json
from compbench.compose.quantize import Codes
from compbench.quant.registry import Quantised
from compbench.variants import KINDS


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """The b-bit codes (uint8) as packed bytes: ceil(n · b / 8) bytes for n codes."""
    a = codes.reshape(-1).cpu().numpy()
    if a.size and not 0 <= int(a.min()) <= int(a.max()) < 2**bits:
        raise ValueError(f"codes in [{int(a.min())}, {int(a.max())}] do not fit in {bits} bits")
    a = a.astype(np.uint8)
    planes = (a[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return torch.from_numpy(np.packbits(planes.reshape(-1), bitorder="little"))


def unpack_codes(packed: torch.Tensor, shape, bits: int) -> torch.Tensor:
    n = int(np.prod(shape))
    raw = packed.cpu().numpy()
    if raw.size != -(-n * bits // 8):
        raise CorruptArtifact(f"packed codes of {raw.size} bytes do not hold {n} codes of {bits} bits (shape {tuple(shape)})")
    planes = np.unpackbits(raw, count=n * bits, bitorder="little").reshape(n, bits)
    values = (planes << np.arange(bits, dtype=np.uint8)).sum(1).astype(np.uint8)
    return torch.from_numpy(values).reshape(tuple(shape))


def _half(t: torch.Tensor, what: str) -> torch.Tensor:
    h = t.detach().cpu().to(torch.float16)
    bad = ~torch.isfinite(h) | ((h == 0) & (t.cpu() != 0))
    if bad.any():
        raise ValueError(f"{what}: {int(bad.sum())} value(s) outside float16's range (e.g. {float(t.cpu()[bad][0])!r})")
    return h


def save(out_dir, base_dir, quantised: dict[str, Quantised], recipe: dict, pruned_dir=None) -> None:
    tensors, shapes = {}, {}
    bits = {q.codes.bits for q in quantised.values()}
    groups = {q.codes.group_size for q in quantised.values()}
    if len(bits) != 1 or len(groups) != 1:
        raise ValueError(f"one variant has one bit width and group size; got bits {sorted(bits)}, group sizes {sorted(groups)}")
    for name, q in quantised.items():
        c = q.codes
        shapes[name] = list(c.codes.shape)
        tensors[f"{name}.codes"] = pack_codes(c.codes, c.bits)
        tensors[f"{name}.scale"] = _half(c.scale, f"{name}: scale")
        tensors[f"{name}.zero"] = c.zero.detach().cpu().to(torch.uint8)
        if q.smooth is not None:
            tensors[f"{name}.smooth"] = _half(q.smooth, f"{name}: AWQ scale")
    meta = {"shapes": json.dumps(shapes), "bits": bits.pop(), "group_size": groups.pop()}
    manifest = {"kind": "quant", "base": str(base_dir), **recipe}
    if pruned_dir is not None:
        manifest["pruned"] = str(pruned_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        save_tensors(tmp / "codes.safetensors", tensors, meta)
        write_json(tmp / "variant.json", manifest)


def load_quantised(variant_dir) -> dict[str, Quantised]:
    """The stored linears, scales as float32 (float16 values: exact in float32)."""
    from safetensors import safe_open

    path = Path(variant_dir) / "codes.safetensors"
    t = load_tensors(path)
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        shapes, bits, group_size = json.loads(meta["shapes"]), int(meta["bits"]), int(meta["group_size"])
    except (KeyError, TypeError, ValueError) as e:
        raise CorruptArtifact(f"{path}: shapes, bits or group size missing from the metadata ({e})") from e
    out = {}
    for name, shape in shapes.items():
        try:
            codes = unpack_codes(t[f"{name}.codes"], shape, bits)
            scale, zero = t[f"{name}.scale"].float(), t[f"{name}.zero"].float()
        except KeyError as e:
            raise CorruptArtifact(f"{path}: tensor {e} of {name!r} missing") from e
        groups = -(-shape[1] // group_size)
        if tuple(scale.shape) != (shape[0], groups) or tuple(zero.shape) != (shape[0], groups):
            raise CorruptArtifact(
                f"{path}: {name!r} has scale {tuple(scale.shape)} / zero {tuple(zero.shape)}; expected ({shape[0]}, {groups})"
            )
        smooth = t.get(f"{name}.smooth")
        out[name] = Quantised(Codes(codes, scale, zero, bits, group_size), None if smooth is None else smooth.float())
    return out


def apply(model, variant_dir, manifest: dict) -> None:
    from compbench.prune import masked

    keep = {}
    if manifest.get("pruned"):
        check_record(manifest["pruned"])
        keep = masked.load_masks(manifest["pruned"])
    modules = dict(model.named_modules())
    for name, q in load_quantised(variant_dir).items():
        if name not in modules:
            raise CorruptArtifact(f"{variant_dir}: codes for {name!r}, which the base model does not have")
        W = modules[name].weight
        if tuple(W.shape) != tuple(q.codes.codes.shape):
            raise CorruptArtifact(f"{variant_dir}: codes of {name!r} have shape {tuple(q.codes.codes.shape)}, weight has {tuple(W.shape)}")
        new = q.weight()
        if name in keep:
            new = new * keep[name]
        with torch.no_grad():
            W.copy_(new.to(W.dtype))


@KINDS.register("quant")
def _load(path, manifest, device, dtype):
    from compbench.models import load

    model = load(manifest["base"], device=device, dtype=dtype)
    apply(model, path, manifest)
    return model

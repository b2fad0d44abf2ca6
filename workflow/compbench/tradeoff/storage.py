"""Stored size of a variant's decoder linears, one storage format per variant kind.

Torch-free (numpy and safetensors' numpy reader, imported when a size is computed): the
table job reads the artifacts, not the models. Every format counts the weights of the
decoder linears only (``results/spectra/<model>/matrices.csv``: the 7 per LLaMA block);
embeddings, ``lm_head`` and norms are the same in every variant and left out.

========================  ===================================================================
kind                      bits of one linear (rows × cols = n weights, k kept)
========================  ===================================================================
dense                     16 n (bf16)
masked, unstructured      16 k + n (kept values in bf16 + a 1-bit bitmap over all weights)
masked, N:M (N of M zero) 16 k + ⌈log2 M⌉ k (kept values + an index of each kept value in its
                          group of M, as NVIDIA's sparse tensor cores store 2:4: 2 bits)
lowrank (factor pair)     16 r (rows + cols) (U and V in bf16); linears not factorised: dense
quant, b bits, groups g   b n + 32 rows ⌈cols / g⌉ (codes + a 16-bit scale and a 16-bit zero
                          per row and group) [+ 16 cols: AWQ's per-input-channel scale]
quant of a pruned model   b k + 32 rows ⌈cols / g⌉ [+ 16 cols] + the pruned model's index
                          (bitmap n, or N:M ⌈log2 M⌉ k)
========================  ===================================================================

The effective parameter count is n (dense, quant), k (pruned) or r (rows + cols) (factorised).
A format is a function registered under its variant kind in :data:`FORMATS`; a kind
without one (memtrain's fine-tuned ``trained`` models, dense-sized) is not on the plane.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from compbench.registry import Registry

FORMATS: Registry = Registry("storage format")
BF16 = 16  # bits of a dense weight, a kept sparse value, a factor entry
GROUP_PARAMS = 16 + 16  # bits of a quantisation group's scale and zero


@dataclass(frozen=True)
class Stored:
    """A variant's decoder linears as stored: total ``bits``, effective ``params``, the
    ``format`` in words and the ``method`` that made it."""

    bits: int
    params: int
    format: str
    method: str

    @property
    def bytes(self) -> int:
        return -(-self.bits // 8)


# ---------------------------------------------------------------- the formulas (one linear)
def dense_bits(rows: int, cols: int) -> int:
    return BF16 * rows * cols


def index_bits(n: int, kept: int, nm: tuple[int, int] | None) -> int:
    """Bits of a sparse matrix's index: a bitmap over its n weights, or N:M's ⌈log2 M⌉ per kept value."""
    return math.ceil(math.log2(nm[1])) * kept if nm else n


def sparse_bits(n: int, kept: int, nm: tuple[int, int] | None = None) -> int:
    return BF16 * kept + index_bits(n, kept, nm)


def lowrank_bits(rows: int, cols: int, rank: int) -> int:
    return BF16 * rank * (rows + cols)


def quant_bits(rows: int, cols: int, bits: int, group_size: int, values: int | None = None, smooth: bool = False) -> int:
    """Codes of ``values`` weights (default all) + a scale and a zero per row and group [+ AWQ's input scales]."""
    return (
        bits * (rows * cols if values is None else values) + GROUP_PARAMS * rows * -(-cols // group_size) + (BF16 * cols if smooth else 0)
    )


# ---------------------------------------------------------------- reading artifacts (torch-free)
def manifest(variant_dir) -> dict:
    p = Path(variant_dir) / "variant.json"
    return json.loads(p.read_text()) if p.exists() else {"kind": "dense"}


def _safetensors(path):
    """(metadata, tensor name -> numpy array) of a safetensors file, its provenance record checked."""
    from safetensors import safe_open

    from compbench.artifacts import check_record

    check_record(path)
    with safe_open(str(path), framework="numpy") as f:
        return f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}


def kept_counts(masked_dir) -> dict[str, int]:
    """Kept weights per linear of a masked variant (the ones of its packed bitmaps)."""
    import numpy as np

    _, masks = _safetensors(Path(masked_dir) / "masks.safetensors")
    ones = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)
    return {k: int(ones[v].sum()) for k, v in masks.items()}


def _nm(m: dict) -> tuple[int, int] | None:
    return tuple(m["nm"]) if m.get("nm") else None


def _sparse_words(nm) -> str:
    return f"{nm[0]}:{nm[1]} index ({math.ceil(math.log2(nm[1]))} bits per kept value)" if nm else "1-bit bitmap"


def size(variant_dir, inventory: dict[str, tuple[int, int]]) -> Stored:
    """The stored size of the variant at ``variant_dir``; ``inventory``: decoder linear -> (rows, cols)."""
    m = manifest(variant_dir)
    return FORMATS.get(m["kind"])(Path(variant_dir), m, inventory)


# ---------------------------------------------------------------- one format per variant kind
@FORMATS.register("dense")
def _dense(path, m, inventory) -> Stored:
    return Stored(sum(dense_bits(r, c) for r, c in inventory.values()), sum(r * c for r, c in inventory.values()), "bf16", "dense")


@FORMATS.register("masked")
def _masked(path, m, inventory) -> Stored:
    kept, nm = kept_counts(path), _nm(m)
    bits = params = 0
    for name, (r, c) in inventory.items():
        k = kept.get(name)
        bits += dense_bits(r, c) if k is None else sparse_bits(r * c, k, nm)
        params += r * c if k is None else k
    return Stored(bits, params, f"bf16 kept values + {_sparse_words(nm)}", m.get("method", "?"))


@FORMATS.register("lowrank")
def _lowrank(path, m, inventory) -> Stored:
    ranks = m.get("ranks") or {}
    bits = params = 0
    for name, (r, c) in inventory.items():
        k = ranks.get(name)
        bits += dense_bits(r, c) if k is None else lowrank_bits(r, c, int(k))
        params += r * c if k is None else int(k) * (r + c)
    method = m.get("allocation", "?") + (f"+ft-{m['finetune']}" if m.get("finetune") else "")
    return Stored(bits, params, "bf16 factor pairs (U, V) + bf16 dense for the rest", method)


@FORMATS.register("quant")
def _quant(path, m, inventory) -> Stored:
    meta, tensors = _safetensors(path / "codes.safetensors")
    shapes = json.loads(meta["shapes"])
    b, g = int(meta["bits"]), int(meta["group_size"])
    pruned = manifest(m["pruned"]) if m.get("pruned") else None
    kept = kept_counts(m["pruned"]) if pruned else {}
    nm = _nm(pruned) if pruned else None
    bits = params = 0
    for name, (r, c) in inventory.items():
        if name not in shapes:
            bits, params = bits + dense_bits(r, c), params + r * c
            continue
        if tuple(shapes[name]) != (r, c):
            raise ValueError(f"{path}: codes of {name!r} have shape {tuple(shapes[name])}, the model's linear is {(r, c)}")
        k = kept.get(name, r * c)
        smooth = f"{name}.smooth" in tensors
        bits += quant_bits(r, c, b, g, k, smooth) + (index_bits(r * c, k, nm) if name in kept else 0)
        params += k
    words = f"int{b} codes, 16-bit scale + 16-bit zero per {g} columns"
    if any(k.endswith(".smooth") for k in tensors):
        words += ", 16-bit input-channel scales"
    method = m.get("method", "?")
    if pruned:
        words += f", kept values only + {_sparse_words(nm)}"
        method = f"{pruned.get('method', '?')}+{method}"
    return Stored(bits, params, words, method)

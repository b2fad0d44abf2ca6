"""Loading any variant of a model (dense, pruned, low-rank, edited, ...) for evaluation.

A variant is a directory. A plain ``save_pretrained`` directory (no
``variant.json``) is the dense model. Otherwise ``variant.json`` names a
``kind`` registered in :data:`KINDS`, whose loader rebuilds the model, usually
from a base model directory plus the variant's own tensors. A line adds a kind
with one ``@KINDS.register`` line in its module and names that module in
:mod:`compbench.lines`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from compbench.artifacts import check_record, read_json
from compbench.registry import Registry

KINDS: Registry = Registry("variant kind")


@KINDS.register("dense")
def _dense(path: Path, manifest: dict, device, dtype):
    from compbench.models import load

    return load(path, device=device, dtype=dtype)


def _kind(name: str):
    """The loader of a variant kind; the line that defines it is imported on first use
    (:data:`compbench.lines.LINES` names the module), so the core imports no line."""
    if name not in KINDS:
        import importlib

        from compbench.lines import kind_module

        module = kind_module(name)
        if module is not None:
            importlib.import_module(module)
    return KINDS.get(name)


def manifest(path: str | Path) -> dict:
    path = Path(path)
    if (path / "variant.json").exists():
        return read_json(path / "variant.json")
    return {"kind": "dense"}


def load(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None):
    """Return ``(model, tokenizer_dir)`` for the variant stored at ``path``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: variant directory missing")
    check_record(path)  # every file of the variant as it was written (compbench.artifacts)
    m = manifest(path)
    if "base" in m:
        check_record(m["base"])
    model = _kind(m["kind"])(path, m, device, dtype)
    tok_dir = Path(m["base"]) if "base" in m else path
    return model, tok_dir

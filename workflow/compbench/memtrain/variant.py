"""The ``trained`` variant kind: a fine-tuned model stored as its base plus the tensors training changed.

Layout: ``variant.json`` (``{"kind": "trained", "base": <base model dir>, ...recipe}``) and
``values.safetensors`` (the changed tensors, by state-dict name). Loading copies
them into a fresh copy of the base model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from compbench.artifacts import CorruptArtifact, atomic_path, load_tensors, save_tensors, write_json
from compbench.variants import KINDS


def changed_tensors(model, base_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in model.state_dict().items():
        if k not in base_state:
            raise CorruptArtifact(f"trained model has tensor {k!r} that the base model does not have")
        if v.shape != base_state[k].shape:
            raise CorruptArtifact(f"tensor {k!r} changed shape {tuple(base_state[k].shape)} -> {tuple(v.shape)}")
        if not torch.equal(v.detach().cpu(), base_state[k].cpu()):
            out[k] = v.detach().cpu().clone()
    return out


def save(out_dir, base_dir, model, base_state: dict, recipe: dict) -> int:
    changed = changed_tensors(model, base_state)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        save_tensors(tmp / "values.safetensors", changed)
        write_json(tmp / "variant.json", {**recipe, "kind": "trained", "base": str(base_dir), "changed": len(changed)})
    return len(changed)


@KINDS.register("trained")
def _load(path, manifest, device, dtype):
    from compbench.models import load

    model = load(manifest["base"], device=device, dtype=dtype)
    values = load_tensors(Path(path) / "values.safetensors")
    state = model.state_dict()
    for k, v in values.items():
        if k not in state or state[k].shape != v.shape:
            raise CorruptArtifact(f"{path}: tensor {k!r} does not fit the base model {manifest['base']}")
        with torch.no_grad():
            state[k].copy_(v.to(state[k].dtype))
    return model

"""The PASS line's stages: data -> dense CNN -> (method, FLOPs budget) -> pruned, fine-tuned CNN.

Artifacts (all safetensors / JSON / CSV, written atomically):

* data: ``x_train, y_train, x_test, y_test`` tensors;
* dense: ``weights.safetensors`` (state dict) + ``arch.json``;
* pruned: ``weights.safetensors`` (the *smaller* network's fine-tuned state dict),
  ``keep.json`` (kept channel indices per unit: with ``arch.json`` it rebuilds
  the pruned architecture, :func:`load_pruned`), ``record.csv``, ``history.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from compbench.artifacts import atomic_path, load_tensors, read_json, save_tensors, write_json
from compbench.vision import channels as C
from compbench.vision import images


def make_data(spec: dict) -> dict:
    if spec["source"] == "generated":
        xtr, ytr = images.generate(spec["n_train"], spec["n_classes"], spec["size"], spec["noise"], spec["seed"])
        xte, yte = images.generate(spec["n_test"], spec["n_classes"], spec["size"], spec["noise"], spec["seed"] + 1)
    else:  # pragma: no cover - real data sets
        xtr, ytr = images.load_real(spec, "train", spec["size"], spec.get("n_train"))
        xte, yte = images.load_real(spec, "test", spec["size"], spec.get("n_test"))
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


def load_data(path) -> dict:
    d = load_tensors(path)
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(d)
    if missing:
        from compbench.artifacts import CorruptArtifact

        raise CorruptArtifact(f"{path}: image set lacks {sorted(missing)}")
    return d


def arch_of(cfg: dict, data: dict) -> dict:
    m = cfg["model"]
    arch = {"kind": m["kind"], "n_classes": int(data["y_train"].max()) + 1, "in_ch": int(data["x_train"].shape[1])}
    if m["kind"] == "small_resnet":
        arch.update(widths=list(m["widths"]), blocks=list(m["blocks"]))
    if m.get("weights"):
        arch["weights"] = m["weights"]
    return arch


def save_model(out_dir, model, arch: dict, keep=None) -> None:
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        save_tensors(tmp / "weights.safetensors", {k: v.detach().cpu() for k, v in model.state_dict().items()})
        write_json(tmp / "arch.json", {k: v for k, v in arch.items() if k != "weights"})
        if keep is not None:
            write_json(tmp / "keep.json", [[int(i) for i in k] for k in keep])


def load_model(model_dir, device="cpu"):
    """A dense or pruned network from its directory (pruned: dense arch + keep.json, then the weights)."""
    model_dir = Path(model_dir)
    arch = read_json(model_dir / "arch.json")
    model = C.build(arch)
    if (model_dir / "keep.json").exists():
        model = C.prune(model, [torch.tensor(k) for k in read_json(model_dir / "keep.json")])
    model.load_state_dict(load_tensors(model_dir / "weights.safetensors"))
    return model.to(device).eval()


def measure(model, data, input_shape, lat: dict, device) -> dict:
    """Test accuracy, MACs, parameters, latency; ``correct``: every test image's correctness
    (bool tensor, the per-item results of the intervals; not a metric row)."""
    f = C.count_flops(model, input_shape)
    ok = C.correct(model, data["x_test"], data["y_test"])
    return {
        "accuracy": int(ok.sum()) / len(ok),
        "correct": ok,
        "macs": f["macs"],
        "params": f["params"],
        "latency_ms": C.latency_ms(model, input_shape, lat["batch"], lat["repeats"], device),
    }


def train_dense(cfg: dict, data: dict, device, log=None):
    arch = arch_of(cfg, data)
    torch.manual_seed(cfg["seed"])
    model = C.build(arch).to(device)
    m = cfg["model"]
    losses = C.train(model, data["x_train"], data["y_train"], m["epochs"], m["lr"], m["batch_size"], cfg["seed"], log, desc="dense")
    return model, arch, losses


def prune_and_finetune(cfg: dict, method: str, target: float, dense, data: dict, device, log=None):
    """Select channels with ``method`` at a MACs budget ``target`` (fraction of dense), remove them, fine-tune."""
    from compbench.vision.pass_sparsity import METHODS

    fn = METHODS.get(method)
    shape = tuple(data["x_train"].shape[1:])
    keep, info = fn(dense, data["x_train"], data["y_train"], shape, target, cfg["hypernet"], cfg["seed"], log)
    pruned = C.prune(dense, keep)
    acc0 = C.accuracy(pruned, data["x_test"], data["y_test"])
    ft = cfg["finetune"]
    losses = C.train(
        pruned, data["x_train"], data["y_train"], ft["epochs"], ft["lr"], ft["batch_size"], cfg["seed"], log, desc=f"finetune {method}"
    )
    rec = measure(pruned, data, shape, cfg["latency"], device)
    rec["accuracy_before_finetune"] = acc0
    rec["kept"] = json.dumps([len(k) for k in keep])
    rec["widths"] = json.dumps(C.widths(dense))
    rec["ratios"] = json.dumps([round(float(r), 4) for r in info["ratios"]])
    rec["finetune_loss"] = losses[-1] if losses else float("nan")
    return pruned, keep, rec, info

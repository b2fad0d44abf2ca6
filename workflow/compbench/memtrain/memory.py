"""Exact memory accounting from tensors, and measured process memory.

``account(model, optimizer)`` sums ``numel * element_size`` over the tensors of
each category, at the moment it is called (call it after ``optimizer.step()``
and before ``zero_grad``, when gradients and state both exist):

* ``weights``: every parameter of the model (frozen or not, LoRA adapters
  included) plus the INT8 codes, scales and zero points of quantised linears;
* ``gradients``: every ``.grad`` plus the float gradients of quantised linears;
* ``optimizer_state``: every tensor in the optimizer's per-parameter state
  (Adam's first and second moments);
* ``projection``: the GaLore / Q-GaLore projection matrices (INT4 codes, scales
  and zero points for Q-GaLore), and Q-GaLore's saved first singular vector;
* ``buffers`` (reported, not in ``total``): the model's other buffers (rotary tables).

Measured: peak resident set size of the process (Linux ``VmHWM``, which
``reset_peak_rss`` resets through ``/proc/self/clear_refs``), and on CUDA
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

CATEGORIES = ("weights", "gradients", "optimizer_state", "projection")


def nbytes(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.numel() * t.element_size()


def account(model, optimizer=None) -> dict[str, int]:
    from compbench.memtrain.qgalore import QLinear

    out = dict.fromkeys(CATEGORIES + ("buffers",), 0)
    qbuf = set()
    for mod in model.modules():
        if isinstance(mod, QLinear):
            for t in (mod.qweight, mod.scales, mod.zeros):
                out["weights"] += nbytes(t)
                qbuf.add(id(t))
            out["gradients"] += nbytes(mod.grad_w)
    for p in model.parameters():
        out["weights"] += nbytes(p)
        out["gradients"] += nbytes(p.grad)
    for b in model.buffers():
        if id(b) not in qbuf:
            out["buffers"] += nbytes(b)
    if optimizer is not None:
        for state in optimizer.state.values():
            for k, v in state.items():
                if isinstance(v, torch.Tensor):
                    out["optimizer_state"] += nbytes(v)
                elif k == "projector":
                    out["projection"] += sum(nbytes(t) for t in v.state_tensors().values())
    out["total"] = sum(out[c] for c in CATEGORIES)
    return out


def _status(field: str) -> float | None:
    try:
        m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) / 1024 if m else None


def rss_mb() -> float | None:
    return _status("VmRSS")


def peak_rss_mb() -> float | None:
    """Peak RSS since the last :func:`reset_peak_rss` (or process start)."""
    return _status("VmHWM")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False where unsupported. The heap's
    free memory goes back to the OS first: jobs run with a malloc that keeps freed pages
    (compbench.allocator), and a later allocation that reused them would not raise the mark."""
    from compbench import allocator

    allocator.release()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False

"""Run-time device choice: CUDA when present, else CPU."""

from __future__ import annotations

import torch


def pick(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}; allowed: auto, cpu, cuda, cuda:N")
    return torch.device(requested)


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(int(n))

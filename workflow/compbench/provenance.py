"""What produced a result: config values, seed, versions, device, time, memory."""

from __future__ import annotations

import contextlib
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata

import torch

PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "datasets", "snakemake", "lm_eval", "torchaudio")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[p] = "absent"
    try:
        import compbench

        out["compbench"] = compbench.__version__
    except Exception:  # pragma: no cover
        pass
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class Run:
    """Measure wall time and peak memory of a block; ``record()`` gives the columns."""

    device: torch.device
    start: float = field(default_factory=time.perf_counter)
    end: float | None = None

    def __post_init__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def stop(self) -> "Run":
        self.end = time.perf_counter()
        return self

    def record(self) -> dict:
        end = self.end if self.end is not None else time.perf_counter()
        rec = {
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device)
            if self.device.type == "cuda"
            else platform.processor() or platform.machine(),
            "wall_s": round(end - self.start, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        if self.device.type == "cuda":
            rec["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return rec


@contextlib.contextmanager
def measure(device: torch.device):
    run = Run(device)
    yield run
    run.stop()


def stamp(config_values: dict, seed: int | None, run: Run) -> dict:
    """Provenance columns for a tidy table row (flattened, JSON for nested)."""
    import json

    rec = {"seed": seed, "config": json.dumps(config_values, sort_keys=True, default=str)}
    rec.update(run.record())
    rec["versions"] = json.dumps(versions(), sort_keys=True)
    return rec

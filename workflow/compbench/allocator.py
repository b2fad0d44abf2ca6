"""The C allocator settings every job runs with (issue 18). Standard library only: the
Snakefile imports it while it parses.

glibc's malloc serves a block over its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and unmaps it when freed, and it trims the heap whenever the free space at its
top passes the trim threshold. A torch step on the CPU allocates and frees the same large
activations every step (the tiny model's logits alone are 16 × 256 × 8192 floats,
134 MB), so the kernel hands out and zeroes fresh pages each time: ~170,000 minor page
faults and 0.3 s of system time per pretraining step, a fifth of its CPU time. Serving
every block from the heap (``mmap_max=0``) and never trimming it keeps those pages
mapped and reused. Measured on the idle 2-core AMD EPYC
(``workflow/benchmarks/allocator.py`` → ``allocator.csv``).

What it costs: a process keeps the memory it once used until it exits, and fragmentation
raises its peak: +4–15 % peak RSS in the benchmark, +12–18 % for a perplexity job of the
default (41 variants of the tiny model: 61 s instead of 75–78 s). It is for jobs, which are
short-lived and repeat one pattern. The test suite's long-lived workers keep glibc's defaults:
given it they once ran slower (424 s instead of ~310 s, one run, while each worker also ran torch
on every core; docs/operations.md#allocator), and with one torch thread a worker the difference is
within noise (233 s vs 236–250 s, 2026-12-06), so there is nothing to gain there.
:func:`release` hands the free memory back where a measurement needs a clean baseline
(``compbench.memtrain.memory.reset_peak_rss``).

``COMPBENCH_MALLOC=system`` leaves the allocator as it is; so does a ``GLIBC_TUNABLES``
that already sets any ``glibc.malloc`` tunable. Other C libraries ignore the variable.
"""

from __future__ import annotations

import os

TUNABLES = ("glibc.malloc.mmap_max=0", f"glibc.malloc.trim_threshold={1 << 40}")
MODES = ("tuned", "system")


def job_environment(environ=None) -> str | None:
    """Set ``GLIBC_TUNABLES`` in ``environ`` (default ``os.environ``) for the processes
    started from now on; returns the value set, or None where it was left alone."""
    env = os.environ if environ is None else environ
    mode = env.get("COMPBENCH_MALLOC", "tuned")
    if mode not in MODES:
        raise ValueError(f"COMPBENCH_MALLOC={mode!r}: allowed {', '.join(MODES)}")
    current = env.get("GLIBC_TUNABLES", "")
    if mode == "system" or "glibc.malloc." in current:
        return None
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [current, *TUNABLES]))
    return env["GLIBC_TUNABLES"]


def environment(mode: str, base=None) -> dict:
    """A copy of ``base`` (default ``os.environ``) for a process started with ``mode``'s malloc
    ("tuned" or "system") whatever ``GLIBC_TUNABLES`` ``base`` had: for measuring one against
    the other (workflow/benchmarks/allocator.py, tests/core/test_allocator.py)."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k != "GLIBC_TUNABLES"}
    env["COMPBENCH_MALLOC"] = mode
    job_environment(env)
    return env


def release() -> bool:
    """Return the heap's free memory to the OS (glibc ``malloc_trim(0)``); False where
    the C library has no such call."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True

"""compbench.allocator: the malloc settings every job runs with keep freed pages mapped
(no page faults for a block allocated again), leave a user's own settings alone, and give
the memory back where a measurement needs a clean baseline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compbench import allocator

PKG = str(Path(allocator.__file__).resolve().parents[1])

PROBE = """
import json, resource, sys
import torch
from compbench.memtrain import memory
n = 50_000_000  # 200 MB of float32: far over glibc's largest mmap threshold (32 MiB)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # a step's pattern: a large activation and its product, both freed
    x = torch.ones(n); y = x * 2; del x, y
for _ in range(6):  # the heap settles: freed blocks coalesce and are reused
    step()
f0 = faults()
for _ in range(8):
    step()
per_alloc = (faults() - f0) / 16
memory.reset_peak_rss()
rss0 = memory.rss_mb()
x = torch.ones(n)
print(json.dumps({"faults_per_alloc": per_alloc, "growth_mb": memory.peak_rss_mb() - rss0}))
"""


def probe(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env.update(COMPBENCH_MALLOC=mode, PYTHONPATH=PKG)
    allocator.job_environment(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunables and /proc are Linux's")
def test_a_freed_block_is_reused_without_faults_and_the_peak_mark_still_sees_new_memory():
    system, tuned = probe("system"), probe("tuned")
    pages = 200e6 / 4096
    assert system["faults_per_alloc"] > 0.5 * pages, system  # unmapped on free, faulted in again
    assert tuned["faults_per_alloc"] < 0.2 * pages, tuned  # kept mapped and reused (now and then one block is not)
    # reset_peak_rss hands the kept pages back first, so the next 200 MB show as growth
    for got in (system, tuned):
        assert got["growth_mb"] > 150, got


def test_job_environment_sets_appends_and_respects_the_users_choice():
    env = {}
    assert allocator.job_environment(env) == ":".join(allocator.TUNABLES) == env["GLIBC_TUNABLES"]
    env = {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}
    allocator.job_environment(env)
    assert env["GLIBC_TUNABLES"] == "glibc.cpu.hwcaps=-AVX512F:" + ":".join(allocator.TUNABLES)
    own = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert allocator.job_environment(own) is None and own == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    off = {"COMPBENCH_MALLOC": "system"}
    assert allocator.job_environment(off) is None and "GLIBC_TUNABLES" not in off
    with pytest.raises(ValueError, match=r"COMPBENCH_MALLOC='jemalloc': allowed tuned, system"):
        allocator.job_environment({"COMPBENCH_MALLOC": "jemalloc"})

"""compbench.allocator: the malloc settings every job runs with keep freed pages mapped
(no page faults for a block allocated again), leave a user's own settings alone, and give
the memory back where a measurement needs a clean baseline."""

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from compbench import allocator

PKG = str(Path(allocator.__file__).resolve().parents[1])
_LIBC = platform.libc_ver()
LINUX = pytest.mark.skipif(
    not sys.platform.startswith("linux") or _LIBC[0] != "glibc" or tuple(int(x) for x in _LIBC[1].split(".")[:2]) < (2, 26),
    reason=f"needs Linux with glibc >= 2.26 (GLIBC_TUNABLES, /proc); this is {sys.platform} with {_LIBC}",
)

# A training step's pattern through the C allocator itself, as torch's CPU allocator calls it
# (posix_memalign, 64-byte alignment): a large activation and its product, both freed.
FAULTS = """
import ctypes, json, resource
libc = ctypes.CDLL("libc.so.6")
n = 64_000_000  # bytes: over glibc's largest mmap threshold (32 MiB)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def block():
    p = ctypes.c_void_p()
    assert libc.posix_memalign(ctypes.byref(p), 64, ctypes.c_size_t(n)) == 0
    ctypes.memset(p, 1, n)  # touched, as a tensor's values are
    return p
def step():
    a = block(); b = block(); libc.free(a); libc.free(b)
for _ in range(6):  # the heap settles: freed blocks coalesce and are reused
    step()
f0 = faults()
for _ in range(8):
    step()
print(json.dumps({"faults_per_alloc": (faults() - f0) / 16}))
"""

# compbench.memtrain.memory.reset_peak_rss after steps of 2 × 200 MB, used and freed: the next
# step's 400 MB must raise the peak mark, though the allocator kept the freed pages.
RESET = """
import json
import torch
from compbench.memtrain import memory
n = 50_000_000
def step():
    x = torch.ones(n); y = x * 2; del x, y
for _ in range(6):  # the heap settles: the next step reuses its freed blocks
    step()
memory.reset_peak_rss()
rss0 = memory.rss_mb()
step()
print(json.dumps({"growth_mb": memory.peak_rss_mb() - rss0}))
"""


def run(code: str, mode: str) -> dict:
    env = {**allocator.environment(mode), "PYTHONPATH": PKG}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@LINUX
def test_a_freed_block_is_reused_without_page_faults():
    pages = 64e6 / 4096
    system, tuned = run(FAULTS, "system"), run(FAULTS, "tuned")
    assert system["faults_per_alloc"] > 0.5 * pages, system  # unmapped on free, faulted in again
    assert tuned["faults_per_alloc"] < 0.2 * pages, tuned  # kept mapped and reused (now and then one block is not)


@LINUX
def test_the_peak_rss_reset_still_sees_new_memory_under_the_jobs_allocator():
    assert run(RESET, "tuned")["growth_mb"] > 300  # reset_peak_rss handed the kept pages back first


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

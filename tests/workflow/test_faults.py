"""Faults: killed jobs, killed runs, corrupt artifacts (issue 4).

- a job killed mid-write never leaves a finished-looking output (atomic writes);
- after `kill -9` of the whole run, `--unlock` then `--rerun-incomplete` completes it,
  and an output a killed job had half-written is never consumed;
- a corrupt or truncated artifact (safetensors, mask file, table, JSON, model
  directory) is refused on load with a message naming the file.
"""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
import torch

from compbench import artifacts, models
from compbench.prune import masked
from conftest import ROOT, copy_repo, save_tiny_llama, snakemake

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {pkg!r})
    from compbench.artifacts import atomic_path
    with atomic_path({target!r}) as tmp:
        {write}
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write, no cleanup runs
    """
)


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_job_killed_mid_write_leaves_no_finished_looking_output(tmp_path, kind):
    target = tmp_path / ("table.csv" if kind == "file" else "model")
    write = 'tmp.write_text("model,metric\\ntiny,0.")' if kind == "file" else 'tmp.mkdir(); (tmp / "config.json").write_text("{")'
    code = KILLED_WRITER.format(pkg=str(ROOT / "workflow"), target=str(target), write=write)
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert leftovers and all(n.startswith(f".{target.name}.") and n.endswith(".tmp") for n in leftovers), leftovers


def test_killed_rewrite_keeps_the_previous_version(tmp_path):
    target = tmp_path / "table.csv"
    artifacts.write_table(target, pd.DataFrame({"a": [1, 2]}))
    code = KILLED_WRITER.format(pkg=str(ROOT / "workflow"), target=str(target), write='tmp.write_text("a\\n9")')
    subprocess.run([sys.executable, "-c", code])
    assert artifacts.read_table(target)["a"].tolist() == [1, 2]


# Test-only rules dropped into a copy of the workflow: one job writes atomically
# (compbench.artifacts), one writes straight into its output; both then hang
# until a release file appears. `consume` reads the first one's output.
FAULT_RULES = """
import sys as _sys

rule fault_atomic:
    output: "results/fault/atomic.txt"
    log: "results/logs/fault_atomic.log"
    threads: 1
    params: release="results/fault-release"
    shell: "{_sys.executable} -c 'import sys, os, time; sys.path.insert(0, \\"workflow\\"); from compbench.artifacts import atomic_path\\nwith atomic_path(\\"{output}\\") as t:\\n    t.write_text(\\"half\\")\\n    while not os.path.exists(\\"{params.release}\\"): time.sleep(0.2)\\n    t.write_text(\\"complete\\")' 2> {log}"

rule fault_direct:
    output: "results/fault/direct.txt"
    log: "results/logs/fault_direct.log"
    threads: 1
    params: release="results/fault-release"
    shell: "echo half > {output}; while [ ! -e {params.release} ]; do sleep 0.2; done; echo complete > {output}"

rule fault_consume:
    input: "results/fault/atomic.txt"
    output: "results/fault/consumed.txt"
    log: "results/logs/fault_consume.log"
    threads: 1
    shell: "cp {input} {output}"
"""


FAULT_TARGETS = ["results/fault/consumed.txt", "results/fault/direct.txt"]


def killed_mid_write(tmp_path):
    """A copy of the workflow with FAULT_RULES whose run on FAULT_TARGETS was killed
    (kill -9 of Snakemake and every job) while both jobs were mid-write."""
    from conftest import SNAKEMAKE

    (tmp_path / "wf").mkdir()
    wd = copy_repo(tmp_path / "wf")
    (wd / "rules" / "zz_fault.smk").write_text(FAULT_RULES)
    cmd = [
        SNAKEMAKE,
        "--snakefile",
        str(wd / "Snakefile"),
        "-d",
        str(wd),
        "--cores",
        "2",
        *FAULT_TARGETS,
        "--configfile",
        "config/smoke.yaml",
    ]
    run = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t0 = time.time()
        while time.time() - t0 < 120:
            half_atomic = list((wd / "results/fault").glob(".atomic.txt.*.tmp")) if (wd / "results/fault").exists() else []
            if half_atomic and (wd / "results/fault/direct.txt").exists():
                break
            assert run.poll() is None, "snakemake ended before the jobs were mid-write"
            time.sleep(0.2)
        else:
            pytest.fail("the jobs never started writing")
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # kill -9 of snakemake and every job
        run.wait()
    return wd


@pytest.mark.workflow
def test_kill_9_of_the_whole_run_then_rerun_completes(tmp_path):
    wd = killed_mid_write(tmp_path)
    targets = FAULT_TARGETS
    # Mid-write: the atomic output does not exist, so nothing consumed it.
    assert not (wd / "results/fault/atomic.txt").exists()
    assert not (wd / "results/fault/consumed.txt").exists()
    # The direct writer left a half file; Snakemake marked it incomplete.
    assert (wd / "results/fault/direct.txt").read_text().strip() == "half"
    (wd / "results/fault-release").write_text("")
    # A plain rerun refuses: the killed run still holds the lock.
    proc = snakemake(wd, *targets, "--configfile", "config/smoke.yaml", check=False)
    assert proc.returncode != 0 and "--unlock" in proc.stdout + proc.stderr
    snakemake(wd, "--unlock", *targets, "--configfile", "config/smoke.yaml")
    # Snakemake does not trust the half-written file: the killed jobs are planned again.
    plan = snakemake(wd, "-n", *targets, "--configfile", "config/smoke.yaml").stdout
    assert all(re.search(rf"^{r}\s+1\s*$", plan, re.M) for r in ("fault_atomic", "fault_direct", "fault_consume")), plan
    snakemake(wd, "--rerun-incomplete", *targets, "--configfile", "config/smoke.yaml")
    for name in ("atomic.txt", "direct.txt", "consumed.txt"):
        assert (wd / "results/fault" / name).read_text().strip() == "complete", name


# --- corrupt artifacts ---------------------------------------------------------


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_table_is_named(tmp_path):
    path = tmp_path / "perplexity.csv"
    artifacts.write_table(path, pd.DataFrame({"model": ["tiny"] * 50, "value": [1.25] * 50}))
    truncate(path, 0.73)
    with pytest.raises(artifacts.CorruptArtifact, match="perplexity.csv"):
        artifacts.read_table(path)


def test_binary_garbage_table_is_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 10)
    with pytest.raises(artifacts.CorruptArtifact, match="t.csv"):
        artifacts.read_table(path)


def test_truncated_or_garbage_safetensors_is_named(tmp_path):
    path = tmp_path / "values.safetensors"
    artifacts.save_tensors(path, {"w": torch.randn(64, 64)})
    truncate(path)
    with pytest.raises(artifacts.CorruptArtifact, match="values.safetensors"):
        artifacts.load_tensors(path)
    path.write_bytes(os.urandom(4096))
    with pytest.raises(artifacts.CorruptArtifact, match="values.safetensors"):
        artifacts.load_tensors(path)


def test_corrupt_mask_file_is_named(tmp_path):
    keep = torch.rand(16, 24) > 0.5
    masked.save(tmp_path / "v", tmp_path / "base", {"layer.q": keep}, {}, {"method": "wanda"})
    assert torch.equal(masked.load_masks(tmp_path / "v")["layer.q"], keep)
    truncate(tmp_path / "v" / "masks.safetensors", 0.9)
    with pytest.raises(artifacts.CorruptArtifact, match="masks.safetensors"):
        masked.load_masks(tmp_path / "v")


def test_mask_of_the_wrong_shape_is_named(tmp_path):
    import json

    masked.save(tmp_path / "v", tmp_path / "base", {"layer.q": torch.ones(16, 24, dtype=torch.bool)}, {}, {})
    path = tmp_path / "v" / "masks.safetensors"
    t = artifacts.load_tensors(path)
    artifacts.save_tensors(path, t, {"shapes": json.dumps({"layer.q": [160, 24]})})  # metadata lies
    with pytest.raises(artifacts.CorruptArtifact, match="masks.safetensors"):
        masked.load_masks(tmp_path / "v")


def tiny_model_dir(path):
    """A one-block tiny model (the workflow's tiny config: width 16, vocabulary 64) saved at path."""
    return save_tiny_llama(path, vocab=64, hidden=16, inter=32, layers=1, heads=2, positions=16, seed=None, rms_eps=1e-5)


def test_truncated_model_weights_are_named(tmp_path):
    d = tiny_model_dir(tmp_path / "m")
    models.load(d)  # intact: loads
    truncate(d / "model.safetensors")
    with pytest.raises(artifacts.CorruptArtifact, match="model.safetensors"):
        models.load(d)

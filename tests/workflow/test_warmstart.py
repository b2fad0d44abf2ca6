"""Warm start (compbench.warmstart): a script job served by the run's forking server is the
job a fresh ``python script.py`` would run — same argv, cwd, environment, streams, path,
thread pools, exit status and outputs — and without a server it runs cold."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from compbench import warmstart
from conftest import snakemake

SCRIPT = """
import json, os, random, sys
import numpy, torch, threadpoolctl
import probe_module
print("to stdout")
print("to stderr", file=sys.stderr)
info = {
    "argv": sys.argv, "cwd": os.getcwd(), "marker": os.environ.get("WARM_MARKER"),
    "path0": sys.path[0], "probe": probe_module.VALUE, "torch_threads": torch.get_num_threads(),
    "pools": sorted((p["user_api"], p["num_threads"]) for p in threadpoolctl.threadpool_info()),
    "pid": os.getpid(), "ppid": os.getppid(), "main": __name__,
    "draws": [random.random(), float(numpy.random.random()), torch.rand(1).item(), torch.initial_seed()],
}
open("info.json", "w").write(json.dumps(info))
code = os.environ.get("WARM_EXIT", "0")
if code == "raise":
    raise RuntimeError("a failing job")
if code == "sleep":
    import time; time.sleep(60)
sys.exit(int(code))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("warm")
    srv = warmstart.Server(str(folder / "ws"), real_python=sys.executable)
    deadline = time.monotonic() + 120
    while not os.path.exists(srv.socket):
        assert srv.process.poll() is None, (folder / "ws" / "server.log").read_text()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    yield srv
    srv.stop()


def job(tmp_path, srv, *, probe="1", threads="1", exit_code="0", shim=True, wait=True):
    """Run SCRIPT as Snakemake would (its file under .snakemake/scripts/, the job's thread
    variables set), through the shim or with the real interpreter."""
    (tmp_path / ".snakemake" / "scripts").mkdir(parents=True, exist_ok=True)
    script = tmp_path / ".snakemake" / "scripts" / "tmpjob.probe.py"
    script.write_text(SCRIPT)
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    (lib / "probe_module.py").write_text(f"VALUE = {probe}\n")
    env = dict(os.environ, WARM_MARKER="m-" + probe, WARM_EXIT=exit_code, PYTHONPATH=str(lib))
    env.update({k: threads for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    exe = srv.shim if shim else sys.executable
    proc = subprocess.Popen(
        [exe, ".snakemake/scripts/tmpjob.probe.py"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not wait:
        return proc
    out, err = proc.communicate(timeout=120)
    info = json.loads((tmp_path / "info.json").read_text()) if (tmp_path / "info.json").exists() else None
    return proc.returncode, out, err, info


def test_a_served_job_sees_what_a_cold_one_does(server, tmp_path):
    cold_dir, warm_dir = tmp_path / "cold", tmp_path / "warm"
    cold_dir.mkdir()
    warm_dir.mkdir()
    rc_c, out_c, err_c, cold = job(cold_dir, server, shim=False)
    rc_w, out_w, err_w, warm = job(warm_dir, server)
    assert (rc_c, out_c, err_c) == (rc_w, out_w, err_w) == (0, "to stdout\n", "to stderr\n")
    assert warm["pid"] != cold["pid"]
    for key in ("argv", "marker", "probe", "torch_threads", "main"):
        assert warm[key] == cold[key], key
    # the server loaded more libraries (a second OpenMP runtime with scipy), each sized alike
    assert {tuple(p) for p in warm["pools"]} == {tuple(p) for p in cold["pools"]}
    assert warm["cwd"] == str(warm_dir) and warm["path0"] == str(warm_dir / ".snakemake" / "scripts")
    # served, not run cold: the job's parent is the server, the cold one's is this test
    assert warm["ppid"] == server.process.pid and cold["ppid"] == os.getpid()


def test_every_served_job_draws_its_own_unseeded_random_numbers(server, tmp_path):
    """A fresh interpreter seeds random, numpy and torch from the OS, so two cold runs of an
    unseeded job differ; two forks of one server would draw the same numbers unless reseeded."""
    draws = [job(tmp_path, server)[3]["draws"] for _ in range(2)]
    assert all(a != b for a, b in zip(*draws)), draws


def test_thread_pools_follow_the_jobs_variables_not_the_servers(server, tmp_path):
    _, _, _, one = job(tmp_path, server, threads="1")
    _, _, _, two = job(tmp_path, server, threads="2")
    assert one["torch_threads"] == 1 and all(n == 1 for _, n in one["pools"])
    assert two["torch_threads"] == 2 and all(n == 2 for _, n in two["pools"])


def test_a_changed_module_is_imported_fresh_by_the_next_job(server, tmp_path):
    assert job(tmp_path, server, probe="1")[3]["probe"] == 1
    # another size: within one second the same size would reuse the .pyc, warm or cold
    assert job(tmp_path, server, probe="22")[3]["probe"] == 22


@pytest.mark.parametrize("code", ["3", "raise"])
def test_exit_status_and_traceback_reach_snakemake(server, tmp_path, code):
    rc, _, err, _ = job(tmp_path, server, exit_code=code)
    rc_cold, _, err_cold, _ = job(tmp_path, server, exit_code=code, shim=False)
    assert rc == rc_cold == (3 if code == "3" else 1)
    if code == "raise":
        assert "RuntimeError: a failing job" in err and "RuntimeError: a failing job" in err_cold


@pytest.mark.parametrize("how", ["SIGTERM, forwarded by the client", "SIGKILL, the server sees the connection close"])
def test_a_stopped_client_takes_its_job_with_it(server, tmp_path, how):
    proc = job(tmp_path, server, exit_code="sleep", wait=False)
    deadline = time.monotonic() + 60
    while not (tmp_path / "info.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = json.loads((tmp_path / "info.json").read_text())["pid"]
    sig = signal.SIGTERM if how.startswith("SIGTERM") else signal.SIGKILL
    proc.send_signal(sig)
    assert proc.wait(30) == -sig  # as a cold job killed by the same signal
    deadline = time.monotonic() + 10
    while warmstart._alive(child):
        assert time.monotonic() < deadline, "the served job outlived its client"
        time.sleep(0.05)


def test_without_a_server_the_shim_runs_the_job_cold(tmp_path):
    srv = warmstart.Server.__new__(warmstart.Server)  # the shim alone: no server process
    folder = tmp_path / "ws"
    folder.mkdir()
    shim = folder / "python"
    shim.write_text(warmstart._SHIM.format(real=sys.executable, sock=folder / "server.sock", module=warmstart.__file__))
    shim.chmod(0o755)
    srv.shim = str(shim)
    rc, out, _, info = job(tmp_path, srv)
    assert rc == 0 and out == "to stdout\n" and info["probe"] == 1
    (folder / "server.sock.starting").write_text("999999999")  # a server that died while starting
    rc, _, _, info = job(tmp_path, srv, probe="5")
    assert rc == 0 and info["probe"] == 5
    # one that died and is not reaped yet (a zombie: kill(pid, 0) still succeeds): no 30-s wait either
    dead = subprocess.Popen(["true"])
    while warmstart._alive(dead.pid) is not False:
        time.sleep(0.01)
    (folder / "server.sock.starting").write_text(str(dead.pid))
    t0 = time.monotonic()
    rc, _, _, info = job(tmp_path, srv, probe="66")
    assert rc == 0 and info["probe"] == 66 and time.monotonic() - t0 < 20
    dead.wait()


def test_switch_values(monkeypatch):
    assert warmstart.enabled({}) and warmstart.enabled({"COMPBENCH_WARM_START": "1"})
    assert not warmstart.enabled({"COMPBENCH_WARM_START": "0"})
    with pytest.raises(ValueError, match="COMPBENCH_WARM_START='maybe'.*allowed"):
        warmstart.enabled({"COMPBENCH_WARM_START": "maybe"})


def test_the_smoke_run_was_served_and_a_cold_rerun_gives_the_same_bits(smoke, tmp_path, monkeypatch):
    """The smoke run's script jobs went through the server; rebuilding the spectra (float64
    eigenvalues) and the speech features (numpy float64) cold, in a copy of the run, gives the
    same tensors bit for bit."""
    log = (smoke.workdir / ".snakemake" / "compbench-warmstart" / "server.log").read_text()
    served = int(log.rsplit("served", 1)[1].split()[0])
    assert served > 0.5 * sum(smoke.planned.values()), log
    copy = tmp_path / "wf"
    shutil.copytree(smoke.workdir, copy, symlinks=True, ignore=shutil.ignore_patterns("locks", "compbench-warmstart"))
    files = ["results/spectra/tiny/eigenvalues.safetensors", "results/speech/synth/features.safetensors"]
    rules = ["esd", "speech_features"]
    monkeypatch.setenv("COMPBENCH_WARM_START", "0")
    snakemake(copy, *files, "--configfile", "config/smoke.yaml", "--forcerun", *rules, "--allowed-rules", *rules).stdout
    assert not (copy / ".snakemake" / "compbench-warmstart").exists()
    for f in files:
        warm, cold = load_file(smoke.workdir / f), load_file(copy / f)
        assert warm.keys() == cold.keys()
        for k in warm:
            assert warm[k].dtype == cold[k].dtype and torch.equal(warm[k], cold[k]), (f, k)
        assert os.path.getmtime(copy / f) > os.path.getmtime(smoke.workdir / f)  # rebuilt, not copied


MINI_SNAKEFILE = """
import sys
sys.path.insert(0, {pkg!r})
from compbench import warmstart as _warmstart
_warm = {{}}
onstart:
    _warm["server"] = _warmstart.start_for(workflow)
onsuccess:
    _warmstart.stop(_warm.pop("server", None))
rule all:
    input: expand("out{{i}}.txt", i=range({n})), "shell.txt"
rule one:
    output: "out{{i}}.txt"
    script: "job.py"
rule shell_job:
    output: "shell.txt"
    shell: "echo x > {{output}}"
"""


@pytest.mark.parametrize("n", [warmstart.MIN_SCRIPT_JOBS - 1, warmstart.MIN_SCRIPT_JOBS])
def test_the_server_starts_only_for_enough_script_jobs(tmp_path, n):
    """Counted from Snakemake's DAG (script jobs only): a rerun of one or two jobs runs cold.
    The run folder is deeper than a Unix socket path may be: the socket lives in a short
    temporary folder (it failed there once, and every job waited 30 s for a dead server)."""
    from conftest import ROOT, SNAKEMAKE

    tmp_path = tmp_path / ("deep" * 20)  # a run folder too deep for a Unix socket's 107 bytes below it
    tmp_path.mkdir()
    (tmp_path / "Snakefile").write_text(MINI_SNAKEFILE.format(pkg=str(ROOT / "workflow"), n=n))
    (tmp_path / "job.py").write_text("import os\nopen(snakemake.output[0], 'w').write(str(os.getppid()))\n")
    t0 = time.monotonic()
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "-d", str(tmp_path), "-s", str(tmp_path / "Snakefile")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - t0 < 25, proc.stderr[-3000:]
    log = tmp_path / ".snakemake" / "compbench-warmstart" / "server.log"
    if n < warmstart.MIN_SCRIPT_JOBS:
        assert not log.exists()
    else:
        assert "served" in log.read_text(), (log.read_text(), proc.stderr[-3000:])
        served = int(log.read_text().rsplit("served", 1)[1].split()[0])
        assert served == n  # a job that starts while the server imports waits for it
        assert all((tmp_path / f"out{i}.txt").read_text() for i in range(n))

"""Warm start of local script jobs: torch and transformers imported once per run.

Every ``script:`` job of a local run is its own Python process, and before any of its work
it imports torch and transformers: ~4 s of CPU on the 2-core AMD EPYC (``python -X
importtime``: torch 1.3 s; ``transformers.LlamaForCausalLM`` 2.8 s more, half of it
torch._dynamo, scipy.optimize and torch.distributed.tensor pulled in by transformers'
masking, loss and sharding utilities). The smoke run's jobs are almost nothing else, and a
third of the embedded default's job time was start-up (workflow/benchmarks/startup.csv).

A local run (``onstart`` in the Snakefile; not a dry run, not a cluster run) starts one
*server* that imports those libraries and nothing of compbench, then waits on a Unix socket.
Snakemake runs a script job as ``sys.executable <script>``; ``sys.executable`` is pointed at
a small shell *shim* that hands the script to a *client*: the client passes its argv,
working directory, environment and standard streams (file descriptors, SCM_RIGHTS) to the
server, which forks; the child takes them over, sets torch's threads from the job's
OMP_NUM_THREADS (the libraries were loaded before the job's environment existed), reseeds
what a fresh interpreter seeds from the OS, rebuilds ``sys.path`` as ``python <script>``
would have it (script folder, the job's PYTHONPATH, then the interpreter's own) and runs the
script as ``__main__``. The client forwards signals to the child and exits with its status.
The same pattern as multiprocessing's ``forkserver`` start method, for processes that
Snakemake starts.

What a job sees is what a fresh ``python script.py`` would: the same code (compbench is
imported by the child from the job's path, so an edit is never served stale; the server
holds only third-party libraries, which cannot change during one run), environment, cwd,
streams, exit status. Tests: tests/workflow/test_warmstart.py (outputs bit-identical to a
cold job, exit codes, tracebacks, signals, fallback). Anything that keeps the client from
the server (no socket yet while the server imports, a server gone, a job on another host)
falls back to running the real interpreter. ``COMPBENCH_WARM_START=0`` turns it off.

One thing differs: Snakemake's ``benchmark:`` samples the job's process tree, which holds
the client and not the forked child, so with warm start a benchmark file's wall time is
right but its CPU seconds and memory are the client's; measure those with
``COMPBENCH_WARM_START=0`` (workflow/benchmarks/profile_jobs.py says so in its rows).

This module imports only the standard library at module level: the client must start fast.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys

PRELOAD = (
    "numpy",
    "pandas",
    "torch",
    "transformers.models.llama.modeling_llama",  # with it transformers, its modeling and masking utilities
    "safetensors.torch",
    "snakemake.script",
    "threadpoolctl",
)
ENV_SWITCH = "COMPBENCH_WARM_START"
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, with the terminating NUL
_HEADER = struct.Struct("!I")


def enabled(environ=os.environ) -> bool:
    value = environ.get(ENV_SWITCH, "1").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("", "1", "true", "yes", "on"):
        return True
    raise ValueError(f"{ENV_SWITCH}={value!r}: allowed 0/1 (also false/true, no/yes, off/on)")


# ------------------------------------------------------------------ wire format
def _send(sock: socket.socket, obj) -> None:
    data = json.dumps(obj).encode()
    sock.sendall(_HEADER.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError("peer closed the connection")
        buf += part
    return buf


def _recv(sock: socket.socket):
    (n,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return json.loads(_recv_exact(sock, n))


# ----------------------------------------------------------------------- client
def _wait_for_server(sock_path: str, limit_s: float = 30.0) -> None:
    """While the server is still importing (its pid in ``<socket>.starting``, alive), wait
    for its socket rather than import the same libraries beside it on the same cores."""
    import time

    marker = sock_path + ".starting"
    deadline = time.monotonic() + limit_s
    while not os.path.exists(sock_path) and time.monotonic() < deadline:
        try:
            with open(marker) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return  # no server starting: connect fails, the cold path runs
        if not _alive(pid):
            return  # it died while importing (its parent has not reaped it yet)
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, not a zombie (``kill(pid, 0)`` succeeds on a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: the signal test
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def client(sock_path: str, argv: list[str], real_python: str) -> int:
    """Run ``argv`` (a script and its arguments) in a child of the server; return its exit
    status. Without a reachable server: exec the real interpreter instead."""
    try:
        _wait_for_server(sock_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(sock_path)
        socket.send_fds(sock, [b"F"], [0, 1, 2])
        _send(sock, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)})
        pid = _recv(sock)["pid"]
    except (OSError, ConnectionError, ValueError, KeyError):
        os.execv(real_python, [real_python, *argv])  # no server: the cold path

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(s, forward)
    try:
        status = _recv(sock)["status"]
    except (OSError, ConnectionError):
        status = 1
        os.write(2, b"compbench warm start: lost the server while the job ran\n")
    if status < 0:  # killed by a signal: die of the same one, as the job did
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status
    return status


# ----------------------------------------------------------------------- server
def serve(sock_path: str, preload=PRELOAD) -> None:
    """Import ``preload``, then fork a child per client until the parent (Snakemake) is gone.
    Should it fail before it accepts, it removes its ``.starting`` marker: no client waits."""
    try:
        _serve(sock_path, preload)
    finally:
        try:
            os.unlink(sock_path + ".starting")
        except OSError:
            pass


def _serve(sock_path: str, preload) -> None:
    import importlib

    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the jobs; Snakemake stops us
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # Server.stop: finish through `finally`
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    leaked = sorted(m for m in sys.modules if m == "compbench" or m.startswith("compbench."))
    if leaked:  # a child must import the job's own compbench, never the server's copy
        raise RuntimeError(f"warm start server imported {leaked}; it may hold third-party libraries only")
    base_path = list(sys.path)  # python -I: no script folder, no PYTHONPATH
    tmp = sock_path + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(tmp)
    srv.listen(64)
    os.replace(tmp, sock_path)  # the shim sees the socket only once it accepts
    try:
        os.unlink(sock_path + ".starting")
    except FileNotFoundError:
        pass
    jobs: dict[int, socket.socket] = {}
    served = 0
    try:
        while os.getppid() == parent:
            ready, _, _ = select.select([srv, *jobs.values()], [], [], 0.1)
            for pid, conn in list(jobs.items()):
                if conn in ready:  # the client never writes again: it is gone, and so is the job
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if srv in ready:
                conn, _ = srv.accept()
                try:
                    _, fds, _, _ = socket.recv_fds(conn, 1, 3)
                    request = _recv(conn)
                except (OSError, ConnectionError, ValueError):
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    srv.close()
                    for other in jobs.values():
                        other.close()
                    _child(conn, fds, request, base_path)  # never returns
                for fd in fds:
                    os.close(fd)
                jobs[pid] = conn
                served += 1
                try:
                    _send(conn, {"pid": pid})
                except OSError:
                    pass
            while jobs:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                conn = jobs.pop(pid, None)
                if conn is not None:
                    try:
                        _send(conn, {"status": os.waitstatus_to_exitcode(status)})
                    except OSError:
                        pass
                    conn.close()
    finally:
        for pid in jobs:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            os.unlink(sock_path)
        except OSError:
            pass
        print(f"compbench warm start: served {served} jobs", file=sys.stderr, flush=True)


def _child(conn: socket.socket, fds: list[int], request: dict, base_path: list[str]) -> None:
    code = 1
    try:
        conn.close()
        for target, fd in enumerate(fds):
            if fd != target:
                os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(s, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
        argv = request["argv"]
        script = os.path.abspath(argv[0])
        sys.argv = list(argv)
        extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [os.path.dirname(script), *extra, *base_path]
        _fresh_process_state()
        try:
            _run_main(script)
            code = 0
        except SystemExit as e:
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _run_main(script: str) -> None:
    """Run ``script`` as ``python script`` does: a fresh ``__main__`` module whose ``__file__``
    is the absolute path, ``sys.argv[0]`` as given (runpy.run_path would rewrite it)."""
    import builtins
    import types

    with open(script, "rb") as f:
        code = compile(f.read(), script, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__builtins__ = builtins
    main.__cached__ = None
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _fresh_process_state() -> None:
    """What a fresh interpreter would have set from the job's environment or the OS: the
    random seeds, and the thread pools that OpenMP, OpenBLAS and MKL sized from the server's
    environment when they were loaded (Snakemake gives each job OMP_NUM_THREADS,
    OPENBLAS_NUM_THREADS, MKL_NUM_THREADS = its threads). The thread count matters beyond
    speed: a float64 OpenBLAS product on two threads is not the same bits as on one."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()  # every fork would otherwise draw the server's torch numbers

    def count(*names):
        for name in names:
            value = os.environ.get(name, "")
            if value.isdigit() and int(value) > 0:
                return int(value)
        return None

    limits = {"openmp": count("OMP_NUM_THREADS"), "blas": count("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")}
    limits = {api: n for api, n in limits.items() if n}
    if limits:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=limits)
    torch = sys.modules.get("torch")
    if torch is not None and limits.get("openmp"):
        torch.set_num_threads(limits["openmp"])


# ------------------------------------------------------------- Snakemake side
class Server:
    """The server of one local Snakemake run, and the shim that ``sys.executable`` points to."""

    def __init__(self, folder: str, real_python: str = sys.executable):
        import subprocess
        import tempfile

        os.makedirs(folder, exist_ok=True)
        self.folder = os.path.abspath(folder)
        self.real_python = real_python
        # A Unix socket's path has at most 107 bytes; a run folder can be deeper than that.
        self.socket_dir = tempfile.mkdtemp(prefix="compbench-warm-")
        self.socket = os.path.join(self.socket_dir, "s")
        if len(self.socket.encode()) + len(".tmp") > SOCKET_PATH_MAX:
            os.rmdir(self.socket_dir)
            raise OSError(f"warm start: socket path {self.socket!r} is longer than {SOCKET_PATH_MAX} bytes")
        self.shim = os.path.join(self.folder, "python")
        here = os.path.abspath(__file__)
        with open(self.shim + ".tmp", "w") as f:
            f.write(_SHIM.format(real=real_python, sock=self.socket, module=here))
        os.chmod(self.shim + ".tmp", 0o755)
        os.replace(self.shim + ".tmp", self.shim)
        self.log = open(os.path.join(self.folder, "server.log"), "w")
        self.process = subprocess.Popen(
            [real_python, "-I", here, "serve", self.socket], stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL
        )
        with open(self.socket + ".starting", "w") as f:
            f.write(str(self.process.pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except Exception:
                self.process.kill()
        self.log.close()
        for path in (self.socket, self.socket + ".starting", self.shim):
            try:
                os.unlink(path)
            except OSError:
                pass
        try:
            os.rmdir(self.socket_dir)
        except OSError:
            pass


_SHIM = """#!/bin/sh
# compbench warm start (workflow/compbench/warmstart.py): a Snakemake script job goes to
# the run's server, which has torch and transformers imported already; anything else runs
# the real interpreter. Written by the run that uses it, removed when it ends.
if [ "$#" -eq 1 ] && {{ [ -S '{sock}' ] || [ -e '{sock}.starting' ]; }}; then
  case "$1" in
    .snakemake/scripts/*.py|*/.snakemake/scripts/*.py) exec '{real}' -I -S '{module}' client '{sock}' "$1" ;;
  esac
fi
exec '{real}' "$@"
"""


def stop(server: Server | None) -> None:
    if server is not None:
        server.stop()


MIN_SCRIPT_JOBS = 3  # the server's imports cost about what three jobs' imports do


def script_jobs(workflow) -> int:
    """How many ``script:`` jobs the run will execute (a large number if Snakemake's DAG API
    is not what this expects: then the server is started)."""
    try:
        return sum(1 for job in workflow.dag.needrun_jobs() if getattr(job.rule, "script", None))
    except Exception:
        return 1 << 30


def start_for(workflow, folder: str = ".snakemake/compbench-warmstart") -> Server | None:
    """Start the server for a Snakemake run that executes jobs here (``onstart``); None when
    the run is not local, warm start is off, or fewer than MIN_SCRIPT_JOBS script jobs run
    (a rerun of one or two jobs is cheaper cold than with a server to import)."""
    if not enabled() or not workflow.local_exec or not workflow.is_main_process or os.name != "posix":
        return None
    if script_jobs(workflow) < MIN_SCRIPT_JOBS:
        return None
    try:
        server = Server(folder)
    except OSError as e:  # no warm start is no failure: every job runs cold
        print(f"compbench: {e}; jobs run without warm start", file=sys.stderr)
        return None
    sys.executable = server.shim
    return server


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "client":
        return client(argv[1], argv[2:], sys.executable)
    if len(argv) == 2 and argv[0] == "serve":
        serve(argv[1])
        return 0
    print("usage: warmstart.py serve SOCKET | client SOCKET SCRIPT [ARGS...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What ``workflow/run.sh`` checks around a Snakemake run (torch-free).

* ``python -m compbench.ops lock DIR``: prints ``none`` (no Snakemake lock in
  DIR/.snakemake/locks), ``stale`` (locks, but no live process works in DIR:
  the run that held them was killed, e.g. by ``kill -9``) or ``live <pid>...``.
  ``run.sh main`` unlocks a stale lock itself (``snakemake --unlock``) and
  refuses to start beside a live run.
* ``python -m compbench.ops verify RESULTS [-- SNAKEMAKE ARGS]``: checks every
  artifact under RESULTS against its provenance record
  (:func:`compbench.artifacts.verify_tree`) and names each damaged one with the
  command that rebuilds it; exit status 1 when any is damaged.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def live_processes(workdir: str | os.PathLike) -> list[int]:
    """PIDs of processes (other than this one and its parents) working in ``workdir``
    that are Snakemake or one of its jobs (a snakemake command line, or a job script
    under .snakemake/). Linux /proc; elsewhere nothing is found."""
    workdir = os.path.realpath(workdir)
    ours = {os.getpid(), os.getppid()}
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(d.name)
            if pid in ours:
                continue
            argv = (d / "cmdline").read_bytes().split(b"\0")
            cmd = " ".join(a.decode(errors="replace") for a in argv)
            if "snakemake" not in cmd:
                continue
            cwd = os.path.realpath(d / "cwd")
        except (OSError, ValueError):
            continue
        if cwd == workdir or workdir in cmd:
            out.append(pid)
    return sorted(out)


def lock_state(workdir: str | os.PathLike) -> tuple[str, list[int]]:
    locks = Path(workdir, ".snakemake", "locks")
    if not locks.is_dir() or not any(locks.iterdir()):
        return "none", []
    pids = live_processes(workdir)
    return ("live", pids) if pids else ("stale", [])


def rebuild_command(artifact: Path, results: Path, snakemake_args: list[str]) -> str:
    """Snakemake reruns the job that wrote ``artifact`` (forced: its output looks up to date)."""
    target = Path(results.name) / artifact.relative_to(results)
    args = " ".join(shlex.quote(a) for a in snakemake_args)
    return f"bash workflow/run.sh snakemake --cores all --force {shlex.quote(str(target))}{' ' + args if args else ''}"


def verify(results: str | os.PathLike, snakemake_args: list[str]) -> int:
    from compbench.artifacts import verify_tree

    results = Path(results)
    if not results.is_dir():
        print(f"[compbench] verify: {results} does not exist; nothing to check", file=sys.stderr)
        return 0
    broken = verify_tree(results)
    if not broken:
        print(f"[compbench] verify: every artifact under {results} matches its provenance record", file=sys.stderr)
        return 0
    print(f"[compbench] verify: {len(broken)} damaged artifact(s) under {results}:", file=sys.stderr)
    for artifact, problems in broken.items():
        print(f"  {artifact}", file=sys.stderr)
        for p in problems:
            print(f"    {p}", file=sys.stderr)
        print(f"    rebuild: {rebuild_command(artifact, results, snakemake_args)}", file=sys.stderr)
    print(
        "[compbench] Snakemake cannot see this damage (it compares times, not content); rebuild the artifacts above, "
        "then run again: the jobs that read them rerun on the rebuilt files",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "lock":
        state, pids = lock_state(argv[1])
        print(" ".join([state, *map(str, pids)]))
        return 0
    if len(argv) >= 2 and argv[0] == "verify":
        rest = argv[2:]
        return verify(argv[1], rest[1:] if rest[:1] == ["--"] else rest)
    print("usage: python -m compbench.ops lock DIR | verify RESULTS [-- SNAKEMAKE ARGS]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

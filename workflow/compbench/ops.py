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
* ``python -m compbench.ops report current|made REPORT [-- SNAKEMAKE ARGS]``: whether
  the HTML report is current (exit 0) -- made by ``run.sh main`` with the same
  arguments, and no result or report source newer than it --, and recording that it
  was just made. ``run.sh main`` skips ``snakemake --report`` (a second DAG build and
  the rendering) when the report is current, so a run with nothing to do stays short.
"""

from __future__ import annotations

import json
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


SOURCES = ("Snakefile", "rules", "workflow", "config", "profiles")  # a checkout's workflow, without results or venv


def copy_sources(root: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """A copy of the workflow's sources (no results, no venv, no caches) in ``dest`` to run
    Snakemake in (the tests' smoke runs, ``workflow/benchmarks/profile_jobs.py dag``)."""
    import shutil

    root, dest = Path(root), Path(dest)
    for item in SOURCES:
        src = root / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / item)
    return dest


# What the report is made from, besides results/: its captions and front-page templates,
# the rules that flag report items, the Snakefile, the configs.
REPORT_SOURCES = ("Snakefile", "rules", "workflow/report", "config")


def _stamp(report: Path) -> Path:
    return report.with_name(f".{report.name}.args")


def _newer(paths, than: float, skip=()) -> Path | None:
    """A file under ``paths`` (files or folders) modified after ``than``, or None."""
    for top in map(Path, paths):
        if top.is_file():
            candidates = [top]
        elif top.is_dir():
            candidates = (p for p in top.rglob("*") if p.is_file())
        else:
            continue
        for p in candidates:
            if p in skip or any(part in skip for part in p.parents):
                continue
            if p.stat().st_mtime > than:
                return p
    return None


def report_current(report: str | os.PathLike, snakemake_args: list[str], root: str | os.PathLike = ".") -> str | None:
    """None when ``report`` is current, else why not: it is missing, was made with other
    arguments (or not by ``run.sh main``), or a file under its results folder (the report,
    its stamp and ``cache/`` aside) or of its sources (:data:`REPORT_SOURCES`) is newer."""
    report, root = Path(report), Path(root)
    if not report.is_file():
        return f"{report} does not exist"
    stamp = _stamp(report)
    try:
        made_with = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return f"{report} has no record of the arguments it was made with"
    if made_with != list(snakemake_args):
        return f"{report} was made with other arguments ({' '.join(made_with) or 'none'})"
    than = report.stat().st_mtime
    newer = _newer([report.parent], than, skip={report, stamp, report.parent / "cache"})
    newer = newer or _newer([root / s for s in REPORT_SOURCES], than)
    return f"{newer} is newer than {report}" if newer else None


def report_made(report: str | os.PathLike, snakemake_args: list[str]) -> None:
    stamp = _stamp(Path(report))
    stamp.write_text(json.dumps(list(snakemake_args)) + "\n")
    os.utime(Path(report))  # the stamp is written after the report: keep the report the newest


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "lock":
        state, pids = lock_state(argv[1])
        print(" ".join([state, *map(str, pids)]))
        return 0
    if len(argv) >= 2 and argv[0] == "verify":
        rest = argv[2:]
        return verify(argv[1], rest[1:] if rest[:1] == ["--"] else rest)
    if len(argv) >= 3 and argv[0] == "report" and argv[1] in ("current", "made"):
        rest = argv[3:]
        args = rest[1:] if rest[:1] == ["--"] else rest
        if argv[1] == "made":
            report_made(argv[2], args)
            return 0
        why = report_current(argv[2], args)
        print(f"[compbench] report: {why}; making it" if why else f"[compbench] report: {argv[2]} is up to date", file=sys.stderr)
        return 1 if why else 0
    print(
        "usage: python -m compbench.ops lock DIR | verify RESULTS [-- SNAKEMAKE ARGS] | report current|made REPORT [-- SNAKEMAKE ARGS]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

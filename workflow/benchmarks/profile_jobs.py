"""Where the workflow's time goes (issue 18): job start-up, jobs per rule, the DAG build.

A benchmark, not a test; it appends rows to tables kept in the repository, each row
with the date, the CPU, the load average (the machine may be shared: compare rows
of one invocation, not across days) and the commit.

    bash workflow/run.sh python workflow/benchmarks/profile_jobs.py startup [SCRIPT ...]
        per rule script of workflow/scripts/: a fresh interpreter runs the imports the
        script runs when it starts (compbench.deps.startup_imports); wall and CPU
        seconds, whether torch / transformers got imported, and the CPU seconds of the
        modules' execution split by top-level package: torch, transformers, compbench,
        other (self times, so the parts add up).                    -> startup.csv
    ... profile_jobs.py jobs RUN_DIR [--label L]
        a finished run's jobs per rule: jobs, wall seconds (the `benchmark:` file, or
        start -> finish in Snakemake's log for rules without one), CPU seconds and peak
        RSS (benchmark files only). The CPU seconds are Snakemake's samples: every 0.5 s
        for a job's first 30 samples, then every 30 s, so for a job longer than ~15 s they
        are a lower bound (a 35 s speech job shows 13 of its 33 busy seconds).
                                                                    -> rules.csv
    ... profile_jobs.py dag [--workdir DIR] [--label L] [-- SNAKEMAKE ARGS ...]
        `snakemake -n` under cProfile in DIR (default: a copy of the sources in a new
        temporary folder, nothing run): wall and CPU of the whole call, its phases
        (imports, parsing the Snakefile and rule files, building the jobs, deciding what
        needs to run) and the costliest functions of this repository (input functions,
        grids, config checks).                                      -> dag.csv
    ... profile_jobs.py noop RUN_DIR [--label L] [-- SNAKEMAKE ARGS ...]
        on a finished run: `workflow/run.sh main` when nothing is to be done, as a whole
        and step by step (verify, lock check, snakemake, report), and `snakemake -n`.
                                                                    -> noop.csv
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow"))
from compbench import deps, ops  # noqa: E402

OUT = ROOT / "workflow" / "benchmarks"
SCRIPTS = ROOT / "workflow" / "scripts"
TOOLS = {"benchmark.py", "benchmark_welore.py"}  # in workflow/scripts/ but no rule runs them
GROUPS = ("torch", "transformers", "compbench")


# ---------------------------------------------------------------- the machine and the run
def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout
    load = os.getloadavg()
    return {
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_1_5_15": " ".join(f"{x:.2f}" for x in load),
        "commit": commit + ("+dirty" if dirty.strip() else ""),
    }


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds (the command and everything it waited for) of one command."""
    c0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, children_cpu() - c0, proc


def append(rows: list[dict], name: str) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    out = OUT / name
    if out.exists():
        df = pd.concat([pd.read_csv(out), df], ignore_index=True)
    df.to_csv(out, index=False)
    return df.tail(len(rows))


def job_env() -> dict:
    """The environment a job gets: this checkout's package first, one thread per job."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "workflow")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


# ---------------------------------------------------------------- (a) start-up of each script
PROBE = """import sys
{imports}
print("COMPBENCH-PROBE " + " ".join(m for m in {groups!r} if m in sys.modules))
"""

# The same imports with every module's execution timed in CPU seconds (self time: what a
# module's own code costs, its imports excluded), so the split by package holds on a
# loaded machine, where -X importtime's wall clock would charge other processes' work.
SPLIT = """import importlib.abc, json, sys, time
self_cpu, stack = {{}}, []

class Timed(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module, run=run, name=name):
            t0 = time.process_time()
            stack.append(0.0)
            try:
                run(module)
            finally:
                dt, inner = time.process_time() - t0, stack.pop()
                self_cpu[name] = self_cpu.get(name, 0.0) + dt - inner
                if stack:
                    stack[-1] += dt
        loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Timed())
{imports}
print("COMPBENCH-SPLIT " + json.dumps(self_cpu))
"""


def cpu_split(stdout: str) -> dict[str, float]:
    """CPU seconds of module execution per group (torch, transformers, compbench, other)."""
    out = {g: 0.0 for g in (*GROUPS, "other")}
    for name, t in json.loads(stdout.split("COMPBENCH-SPLIT", 1)[1]).items():
        top = name.split(".")[0]
        out[top if top in GROUPS else "other"] += t
    return out


def probe(imports: list[str], label: str) -> dict:
    code = PROBE.format(imports="\n".join(imports), groups=GROUPS)
    env = job_env()
    wall, cpu, proc = timed([sys.executable, "-c", code], cwd=ROOT, env=env)
    if proc.returncode != 0:
        return {"script": label, "error": proc.stderr.strip().splitlines()[-1][:200]}
    loaded = proc.stdout.split("COMPBENCH-PROBE", 1)[1].split()
    _, _, split_proc = timed([sys.executable, "-c", SPLIT.format(imports="\n".join(imports))], cwd=ROOT, env=env)
    split = cpu_split(split_proc.stdout)
    return {
        "script": label,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "imports_torch": "torch" in loaded,
        "imports_transformers": "transformers" in loaded,
        **{f"import_{g}_cpu_s": round(v, 3) for g, v in split.items()},
    }


def rule_scripts() -> list[Path]:
    return [p for p in sorted(SCRIPTS.glob("*.py")) if p.name not in TOOLS]


def cmd_startup(args) -> None:
    m = machine()
    scripts = [SCRIPTS / (s if s.endswith(".py") else f"{s}.py") for s in args.scripts] or rule_scripts()
    rows = [
        {**m, "label": args.label, **probe([], "(python alone)")},
        # what Snakemake's `script:` preamble imports before the script's first line
        {
            **m,
            "label": args.label,
            **probe(
                ["import pickle", "from snakemake.logging import logger", "from snakemake.iocontainers import Snakemake"],
                "(snakemake script preamble)",
            ),
        },
    ]
    for s in scripts:
        rows.append({**m, "label": args.label, **probe(deps.startup_imports(str(s)), s.stem)})
        print(rows[-1], flush=True)
    print(append(rows, "startup.csv").drop(columns=["cpu", "cores", "commit"]).to_string(index=False))


# ---------------------------------------------------------------- (b) a finished run, per rule
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


def parse_snakemake_log(text: str) -> pd.DataFrame:
    """Jobs of one Snakemake log: jobid, rule, benchmark file, start and finish times."""
    jobs: dict[str, dict] = {}
    when = None
    current = None
    for line in text.splitlines():
        s = STAMP.match(line.strip())
        if s:
            when = datetime.datetime.strptime(re.sub(" +", " ", s.group(1)), "%a %b %d %H:%M:%S %Y")
            continue
        m = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line.strip())
        if m:
            current = {"rule": m.group(1), "start": when, "benchmark": None}
            continue
        if current is not None:  # the job's lines: benchmark may come before or after jobid
            if line.strip().startswith("benchmark:"):
                current["benchmark"] = line.split(":", 1)[1].strip()
            elif line.strip().startswith("jobid:"):
                jobs[line.split(":", 1)[1].strip()] = current
            elif not line.startswith(" "):
                current = None
        f = re.match(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", line.strip())
        if f and f.group(1) in jobs:
            jobs[f.group(1)]["finish"] = when
    rows = [{"jobid": k, **v} for k, v in jobs.items()]
    return pd.DataFrame(rows, columns=["jobid", "rule", "start", "finish", "benchmark"])


def run_jobs(run_dir: Path) -> pd.DataFrame:
    """One row per finished job of every Snakemake log of the run directory (so give it a
    directory of one cold run): rule, wall seconds, CPU seconds and peak RSS where a
    benchmark file exists (the job's own; Snakemake's process is not in it). In a run with warm
    start (compbench.warmstart; it leaves its server log) a benchmark file samples the client,
    not the forked job: CPU and RSS are left empty, wall seconds stay."""
    warm = (run_dir / ".snakemake" / "compbench-warmstart" / "server.log").exists()
    logs = sorted((run_dir / ".snakemake" / "log").glob("*.snakemake.log"))
    frames = [parse_snakemake_log(p.read_text(errors="replace")).assign(log=p.name) for p in logs]
    jobs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    jobs = jobs.dropna(subset=["finish"])
    rows = []
    for r in jobs.itertuples():
        row = {"rule": r.rule, "wall_s": (r.finish - r.start).total_seconds(), "cpu_s": float("nan"), "max_rss_mb": float("nan")}
        b = run_dir / r.benchmark if isinstance(r.benchmark, str) else None
        if b is not None and b.exists():
            t = pd.read_csv(b, sep="\t").iloc[0]
            row.update(wall_s=float(t["s"]))
            if not warm:
                row.update(cpu_s=float(t.get("cpu_time", float("nan"))), max_rss_mb=float(t.get("max_rss", float("nan"))))
        rows.append(row)
    return pd.DataFrame(rows, columns=["rule", "wall_s", "cpu_s", "max_rss_mb"]), jobs


def cmd_jobs(args) -> None:
    run_dir = Path(args.run_dir).resolve()
    per_job, jobs = run_jobs(run_dir)
    if per_job.empty:
        sys.exit(f"no finished job in the Snakemake logs of {run_dir}/.snakemake/log")
    m = machine()
    m["load_1_5_15"] = f"during the run: see the label ({m['load_1_5_15']} now)"
    t = (
        per_job.groupby("rule")
        .agg(
            jobs=("wall_s", "size"),
            wall_s=("wall_s", "sum"),
            mean_wall_s=("wall_s", "mean"),
            cpu_s=("cpu_s", "sum"),
            max_rss_mb=("max_rss_mb", "max"),
        )
        .reset_index()
        .sort_values("wall_s", ascending=False)
    )
    t["cpu_s"] = t["cpu_s"].where(per_job.groupby("rule")["cpu_s"].count().reindex(t["rule"]).to_numpy() > 0)
    span = (jobs["finish"].max() - jobs["start"].min()).total_seconds()
    total = {"rule": "(run: first start to last finish)", "jobs": len(per_job), "wall_s": span}
    rows = [{**m, "label": args.label, "run": Path(run_dir).name, **r} for r in [*t.round(3).to_dict("records"), total]]
    print(append(rows, "rules.csv").drop(columns=["cpu", "cores", "commit", "run", "load_1_5_15"]).to_string(index=False))


# ---------------------------------------------------------------- (c) the DAG build
PHASES = {
    # cumulative time of these functions (cProfile counts a recursive call once)
    "parse: Snakefile and rule files": ("snakemake/workflow.py", "include"),
    "parse: compbench.config.prepare (schema + checks)": ("compbench/config.py", "prepare"),
    "DAG: build the jobs (DAG.update, incl. input functions)": ("snakemake/dag.py", "update"),
    "DAG: incomplete-output check": ("snakemake/dag.py", "check_incomplete"),
    "DAG: what needs to run (times, checksums, params)": ("snakemake/dag.py", "update_needrun"),
    "DAG: postprocess": ("snakemake/dag.py", "postprocess"),
}


CPU_PROFILE = """import cProfile, runpy, sys, time
out, sys.argv = sys.argv[1], sys.argv[2:]
prof = cProfile.Profile(time.process_time)
prof.enable()
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    code = e.code
else:
    code = 0
prof.disable()
prof.dump_stats(out)
sys.exit(code)
"""


def profile_rows(stats: pstats.Stats, top: int) -> list[dict]:
    raw = stats.stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    rows = []
    for phase, (file_end, name) in PHASES.items():
        ct = max((v[3] for (f, _, n), v in raw.items() if f.endswith(file_end) and n == name), default=0.0)
        rows.append({"item": phase, "cum_s": round(ct, 3)})
    imports = sum(v[2] for (f, _, n), v in raw.items() if n == "<built-in method _imp.exec_dynamic>" or "importlib._bootstrap" in f)
    rows.append({"item": "imports (self time in the import machinery)", "cum_s": round(imports, 3)})
    here = str(ROOT)
    ours = [((f, line, n), v) for (f, line, n), v in raw.items() if f.startswith(here) or "/compbench/" in f or f.endswith(".smk")]
    ours.sort(key=lambda kv: kv[1][3], reverse=True)
    for (f, line, n), v in ours[:top]:
        rel = f.split("/workflow/compbench/", 1)[-1] if "/workflow/compbench/" in f else Path(f).name
        rows.append({"item": f"function {rel}:{line} {n} ({v[1]} calls)", "cum_s": round(v[3], 3)})
    return rows


def snakemake_argv(workdir: Path, extra: list[str]) -> list[str]:
    return ["snakemake", "--snakefile", str(workdir / "Snakefile"), "-d", str(workdir), "--cores", "2", *extra]


def cmd_dag(args) -> None:
    snake = str(Path(sys.executable).with_name("snakemake"))
    with tempfile.TemporaryDirectory(prefix="compbench-dag-") as tmp:
        wd = Path(args.workdir).resolve() if args.workdir else ops.copy_sources(ROOT, Path(tmp))
        extra = ["-n", *args.snakemake_args]
        m = machine()
        wall, cpu, proc = timed([snake, *snakemake_argv(wd, extra)[1:]], cwd=wd, env=job_env())
        jobs = re.search(r"^total\s+(\d+)", proc.stdout, re.M)
        prof = Path(tmp) / "dag.prof"
        # CPU time (time.process_time) as the profiler's clock: on a shared machine, wall
        # time would charge other processes' work to whatever function was waiting
        pwall, pcpu, pproc = timed(
            [sys.executable, "-c", CPU_PROFILE, str(prof), snake, *snakemake_argv(wd, extra)[1:]], cwd=wd, env=job_env()
        )
        if pproc.returncode != 0:
            sys.exit(pproc.stderr[-3000:])
        rows = [
            {"item": "snakemake -n (wall)", "cum_s": round(wall, 3)},
            {"item": "snakemake -n (CPU)", "cum_s": round(cpu, 3)},
            {"item": "jobs planned", "cum_s": int(jobs.group(1)) if jobs else 0},
            {"item": "under cProfile (wall)", "cum_s": round(pwall, 3)},
            {"item": "under cProfile (CPU); the rows below are CPU seconds", "cum_s": round(pcpu, 3)},
            *profile_rows(pstats.Stats(str(prof)), args.top),
        ]
    target = " ".join(args.snakemake_args) or "(default target, embedded default)"
    out = [{**m, "label": args.label, "command": f"snakemake -n {target}", **r} for r in rows]
    print(append(out, "dag.csv")[["item", "cum_s"]].to_string(index=False))


# ---------------------------------------------------------------- (4) the no-op
def cmd_noop(args) -> None:
    """On a finished run: ``workflow/run.sh main`` as a whole (the run directory's own copy,
    so a run of older code measures older code), then its steps one by one, each timed."""
    wd = Path(args.run_dir).resolve()
    snake = str(Path(sys.executable).with_name("snakemake"))
    env = job_env()
    m = machine()
    extra = list(args.snakemake_args)
    main_env = {**env, "COMPBENCH_SKIP_SETUP": "1", "COMPBENCH_VENV": sys.prefix, "COMPBENCH_CORES": "2"}
    steps = [
        (
            "workflow/run.sh main (the run directory's copy, as a whole)",
            ["bash", str(wd / "workflow" / "run.sh"), "main", *extra],
            main_env,
        ),
        (
            "  verify (python -m compbench.ops verify results)",
            [sys.executable, "-m", "compbench.ops", "verify", "results", "--", *extra],
            env,
        ),
        ("  lock check (python -m compbench.ops lock)", [sys.executable, "-m", "compbench.ops", "lock", str(wd)], env),
        (
            "  snakemake (no-op run, profiles/default)",
            [snake, *snakemake_argv(wd, ["--workflow-profile", str(wd / "profiles" / "default"), *extra])[1:]],
            env,
        ),
        (
            "  report current? (python -m compbench.ops report current)",
            [sys.executable, "-m", "compbench.ops", "report", "current", "results/report.html", "--", *extra],
            env,
        ),
        (
            "  snakemake --report (what main ran every time before)",
            [snake, *snakemake_argv(wd, ["--report", str(wd / "noop-report.html"), *extra])[1:]],
            env,
        ),
        ("snakemake -n", [snake, *snakemake_argv(wd, ["-n", *extra])[1:]], env),
    ]
    # once first, not recorded: a run whose report was never made by run.sh main makes it now
    warm = timed(steps[0][1], cwd=wd, env=main_env)[2]
    if warm.returncode != 0:
        sys.exit(f"workflow/run.sh main failed in {wd}:\n{warm.stderr[-3000:]}")
    rows = []
    for name, cmd, e in steps:
        wall, cpu, proc = timed(cmd, cwd=wd, env=e)
        out = proc.stdout + proc.stderr
        nothing = "Nothing to be done" in out if "snakemake" in name and "report" not in name else ""
        note = "report up to date" if "is up to date" in out else ""
        rows.append(
            {
                **m,
                "label": args.label,
                "run": Path(wd).name,  # the folder's name: tables in the repository name no path of one machine
                "step": name,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "rc": proc.returncode,
                "nothing_to_do": nothing,
                "note": note,
            }
        )
        print(rows[-1], flush=True)
    print(append(rows, "noop.csv")[["label", "step", "wall_s", "cpu_s", "rc", "nothing_to_do", "note"]].to_string(index=False))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("startup")
    a.add_argument("scripts", nargs="*")
    a.add_argument("--label", default="")
    b = sub.add_parser("jobs")
    b.add_argument("run_dir")
    b.add_argument("--label", default="")
    c = sub.add_parser("dag")
    c.add_argument("--workdir")
    c.add_argument("--label", default="")
    c.add_argument("--top", type=int, default=15)
    d = sub.add_parser("noop")
    d.add_argument("run_dir")
    d.add_argument("--label", default="")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []  # Snakemake's arguments, after --
    args = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.snakemake_args = extra
    {"startup": cmd_startup, "jobs": cmd_jobs, "dag": cmd_dag, "noop": cmd_noop}[args.cmd](args)


if __name__ == "__main__":
    main()

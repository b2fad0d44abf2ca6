"""Benchmark of the workflow itself (not a test): cold main-job time, test time,
tiny-model training and evaluation throughput. Appends one row per measurement to
workflow/benchmarks/spine.csv (a table kept in the repo) with the machine it ran on.

    bash workflow/run.sh python workflow/scripts/benchmark.py [--skip-main] [--skip-tests] [--workdir DIR]

Also writes workflow/benchmarks/stages.csv: per stage (corpus, pretrain, spectra,
calibration, allocation, prune:<method>, perplexity, ...) the jobs, wall and CPU
seconds and peak memory, from the `benchmark:` files of the run; and
workflow/benchmarks/jobs.csv: the same per job (e.g. lm-eval time per variant).
``--stages-of DIR`` writes both from a finished run in DIR.

Both times are of the README's own commands, in this interpreter's environment
(``COMPBENCH_SKIP_SETUP=1``, ``COMPBENCH_VENV`` = this venv): the cold main job is
``workflow/run.sh main`` in a fresh copy of the sources (``compbench.ops.copy_sources``;
nothing cached), the test command ``workflow/run.sh test -q`` in this checkout. (Until
2026-12-06 they were ``snakemake`` without the workflow profile and a one-process
``pytest -q``: not what a user runs.)
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow"))


def machine() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "load_1min_before": os.getloadavg()[0], "date": datetime.date.today().isoformat()}


def timed(cmd, cwd) -> float:
    """Wall seconds of ``cmd`` run through ``workflow/run.sh`` in this venv, as it is."""
    env = {**os.environ, "COMPBENCH_SKIP_SETUP": "1", "COMPBENCH_VENV": sys.prefix}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, env=env)
    return time.perf_counter() - t0


def stage(rel: Path) -> str:
    """Stage of a job from its benchmark path: the first folder, and for pruning
    the method too (prune/<model>/prune-<method>-... -> prune:<method>)."""
    first = rel.parts[0]
    if first == "prune":
        return f"prune:{rel.stem.split('-')[1]}"
    if first == "perplexity":
        return "perplexity"
    return first if len(rel.parts) > 1 else rel.stem


def job_table(bench: Path) -> pd.DataFrame:
    """One row per compute job (its benchmark path names the rule's wildcards, e.g.
    ``lm_eval/tiny/prune-wanda-uniform-0.5``): wall and CPU seconds and peak RSS,
    from the `benchmark:` files Snakemake writes for every compute job."""
    rows = []
    for f in sorted(bench.rglob("*.tsv")):
        b = pd.read_csv(f, sep="\t").iloc[0]
        rel = f.relative_to(bench)
        rows.append(
            {
                "stage": stage(rel),
                "job": str(rel.with_suffix("")),
                "s": b["s"],
                "cpu_s": b.get("cpu_time", float("nan")),
                "max_rss_mb": b.get("max_rss", float("nan")),
            }
        )
    return pd.DataFrame(rows)


def stage_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per stage of a :func:`job_table`: jobs, total and mean wall seconds, total CPU seconds, peak RSS."""
    if jobs.empty:
        return jobs
    return (
        jobs.groupby("stage")
        .agg(jobs=("s", "size"), total_s=("s", "sum"), mean_s=("s", "mean"), total_cpu_s=("cpu_s", "sum"), max_rss_mb=("max_rss_mb", "max"))
        .reset_index()
    )


def _append(t: pd.DataFrame, out: Path) -> pd.DataFrame:
    if out.exists():
        t = pd.concat([pd.read_csv(out), t], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    t.to_csv(out, index=False)
    return t


def write_run_tables(bench: Path, out_dir: Path, date: str, load) -> pd.DataFrame:
    """Append the run's per-stage table to ``stages.csv`` and its per-job table to
    ``jobs.csv`` (where e.g. the lm-eval time of every variant is kept)."""
    jobs = job_table(bench)
    stages = stage_table(jobs)
    for t in (stages, jobs):
        t.insert(0, "date", date)
        t.insert(1, "load_1min_before", load)
    _append(jobs, out_dir / "jobs.csv")
    return _append(stages, out_dir / "stages.csv")


class _kept:
    """A context manager yielding a directory that is kept afterwards."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.path.mkdir(parents=True)
        return str(self.path)

    def __exit__(self, *exc):
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-main", action="store_true")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--configfile", default=None, help="another config than the embedded default")
    ap.add_argument("--workdir", default=None, help="run the main job here and keep its results (must not exist yet)")
    ap.add_argument("--stages-of", default=None, help="only (re)write the per-stage table from an existing run directory")
    ap.add_argument("--out", default=str(ROOT / "workflow" / "benchmarks" / "spine.csv"))
    args = ap.parse_args()
    if args.stages_of:
        # load unknown for a past run
        t = write_run_tables(
            Path(args.stages_of) / "results/benchmarks", Path(args.out).parent, datetime.date.today().isoformat(), float("nan")
        )
        print(t.to_string(index=False))
        return
    rows = []
    if not args.skip_main:
        if args.workdir and Path(args.workdir).exists():
            sys.exit(f"--workdir {args.workdir} exists; a cold run needs a new directory")
        keep = Path(args.workdir) if args.workdir else None
        with tempfile.TemporaryDirectory(prefix="compbench-bench-") if keep is None else _kept(keep) as wd:
            from compbench.ops import copy_sources

            copy_sources(ROOT, wd)
            m = machine()
            cmd = ["bash", str(Path(wd) / "workflow" / "run.sh"), "main"]
            if args.configfile:
                cmd += ["--configfile", str(Path(args.configfile).resolve())]
            wall = timed(cmd, wd)
            rows.append({**m, "measure": "cold main job", "value": wall, "unit": "s"})
            curve = pd.read_csv(Path(wd) / "results/pretrain/tiny/curve.csv")
            rows.append(
                {**m, "measure": "tiny-model training throughput", "value": curve["tokens_per_s"].dropna().iloc[-1], "unit": "tokens/s"}
            )
            ppl = pd.read_csv(Path(wd) / "results/tables/perplexity.csv")
            dense = ppl[(ppl.variant == "dense") & (ppl.metric == "perplexity")].iloc[0]
            rows.append({**m, "measure": "evaluation throughput (incl. load)", "value": dense.tokens_per_s, "unit": "tokens/s"})
            rows.append({**m, "measure": "dense perplexity (tiny test split)", "value": dense.value, "unit": "ppl"})
            for f in sorted((Path(wd) / "results/benchmarks").rglob("*.tsv")):
                b = pd.read_csv(f, sep="\t")
                rows.append(
                    {
                        **m,
                        "measure": f"job {f.relative_to(Path(wd) / 'results/benchmarks').with_suffix('')}",
                        "value": b.s.iloc[0],
                        "unit": "s",
                    }
                )
            write_run_tables(Path(wd) / "results/benchmarks", Path(args.out).parent, m["date"], m["load_1min_before"])
    if not args.skip_tests:
        m = machine()
        rows.append(
            {**m, "measure": "test command", "value": timed(["bash", str(ROOT / "workflow" / "run.sh"), "test", "-q"], ROOT), "unit": "s"}
        )
    df = pd.DataFrame(rows)
    out = Path(args.out)
    if out.exists():
        df = pd.concat([pd.read_csv(out), df], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(df.tail(len(rows)).to_string(index=False))


if __name__ == "__main__":
    main()

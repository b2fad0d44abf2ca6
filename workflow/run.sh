#!/usr/bin/env bash
# One entry point that does its own set-up: creates .venv if missing, installs
# the pinned requirements (again only when requirements.txt or pyproject.toml
# change), then runs what was asked.
#   workflow/run.sh main   [snakemake args]  the embedded default, then the HTML report
#   workflow/run.sh test   [pytest args]     the test suite, on COMPBENCH_TEST_WORKERS pytest-xdist
#                                            workers (default: the CPUs, at most 4; 0 = one process)
#   workflow/run.sh verify [snakemake args]  check every artifact under results/ against its
#                                            provenance record; name the damaged ones and
#                                            the command that rebuilds each
#   workflow/run.sh snakemake ...            any command inside the environment
# COMPBENCH_SKIP_SETUP=1 uses $COMPBENCH_VENV (or .venv) as it is (tests);
# COMPBENCH_VERIFY=0 makes `main` skip its verification of results/ first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${COMPBENCH_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[compbench] creating $venv" >&2
  "$python" -m venv "$venv"
fi
if [ "${COMPBENCH_SKIP_SETUP:-0}" != 1 ]; then
stamp="$venv/.compbench-installed"
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[compbench] installing pinned requirements into $venv (first time: a few minutes, ~4.6 GB)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r requirements.txt
  "$venv/bin/python" -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
fi
# Debian packages some stages need (workflow/system-packages.txt: one per line,
# '#' comments). Installed with apt-get when missing and we are root; otherwise
# the stages and tests that need them say so and skip or fail clearly.
if [ -f workflow/system-packages.txt ] && command -v dpkg-query >/dev/null; then
  missing=""
  for p in $(sed 's/#.*//' workflow/system-packages.txt); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "[compbench] installing Debian packages:$missing" >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing) >&2 \
        || echo "[compbench] warning: could not install$missing; stages needing them will fail clearly" >&2
    else
      echo "[compbench] note: Debian packages missing (need root to install):$missing" >&2
    fi
  fi
fi
fi  # COMPBENCH_SKIP_SETUP
export PATH="$venv/bin:$PATH"
export PYTHONPATH="$root/workflow${PYTHONPATH:+:$PYTHONPATH}"
# Byte-compile the package (0.2 s; 0.05 s when nothing changed). Where PYTHONDONTWRITEBYTECODE is set, as in some
# containers, Python never writes .pyc files, and every job and test process compiled the modules it imports again:
# the test command in clean clones took 250 and 284 s without this, 221 and 223 s with it (2-core AMD EPYC, 2026-12-06;
# runs vary by ~10 %, docs/operations.md#tests).
python -m compileall -q workflow >/dev/null 2>&1 || true
cmd="${1:-main}"
[ $# -gt 0 ] && shift

# Config files Snakemake would refuse without naming them (a list, a scalar, empty,
# invalid YAML) or read wrongly (a key given twice): named here, before it starts.
check_configfiles() {
  local files=() grab=0 a
  for a in "$@"; do
    case "$a" in
      --configfile=*|--configfiles=*) files+=("${a#*=}"); grab=0 ;;
      --configfile|--configfiles) grab=1 ;;
      -*) grab=0 ;;
      *) [ "$grab" = 1 ] && files+=("$a") ;;
    esac
  done
  [ ${#files[@]} -eq 0 ] || python -m compbench.config "${files[@]}"
}

# After kill -9 of a run its lock stays in .snakemake/locks and every later run stops
# on it. A lock no live process holds (no Snakemake and no job of one working here)
# is stale: unlock it. Beside a live run, refuse.
unlock_if_stale() {
  local state
  state="$(python -m compbench.ops lock "$root")"
  case "$state" in
    stale)
      echo "[compbench] stale Snakemake lock in $root/.snakemake/locks (no live Snakemake works here; a killed run?):" \
           "unlocking with: snakemake --unlock $*" >&2
      snakemake --unlock --cores 1 "$@" >&2
      ;;
    live*)
      echo "[compbench] another Snakemake works in $root (pid ${state#live }); wait for it or stop it, then rerun" >&2
      exit 1
      ;;
  esac
}

case "$cmd" in
  main)
    check_configfiles "$@"
    cores="${COMPBENCH_CORES:-$(nproc)}"
    if [ "${COMPBENCH_VERIFY:-1}" != 0 ]; then
      python -m compbench.ops verify results -- "$@" || {
        echo "[compbench] not started: damaged artifacts would be read as they are (above)." \
             "Rebuild them, or COMPBENCH_VERIFY=0 to run anyway" >&2
        exit 1
      }
    fi
    unlock_if_stale "$@"
    snakemake --cores "$cores" --workflow-profile profiles/default "$@"
    # The report again only when something it shows changed (a run with nothing to do
    # then costs one DAG build, not two plus the rendering): compbench.ops report.
    if ! python -m compbench.ops report current results/report.html -- "$@"; then
      snakemake --cores "$cores" --workflow-profile profiles/default --report results/report.html "$@"
      python -m compbench.ops report made results/report.html -- "$@"
    fi
    echo "[compbench] report: results/report.html" >&2
    ;;
  test)
    # Several workers: the tests that share the smoke run go to one of them, each other
    # module to whichever is free (tests/conftest.py, pytest_collection_modifyitems).
    workers="${COMPBENCH_TEST_WORKERS:-$(n=$(nproc); echo $((n < 4 ? n : 4)))}"
    if [ "$workers" -gt 1 ]; then
      exec python -m pytest -n "$workers" --dist loadgroup --no-loadscope-reorder "$@"
    fi
    exec python -m pytest "$@"
    ;;
  verify)
    exec python -m compbench.ops verify results -- "$@"
    ;;
  snakemake)
    check_configfiles "$@"
    exec snakemake "$@"
    ;;
  *)
    exec "$cmd" "$@"
    ;;
esac

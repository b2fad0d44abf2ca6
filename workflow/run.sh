#!/usr/bin/env bash
# One entry point that does its own set-up: creates .venv if missing, installs
# the pinned requirements (again only when requirements.txt or pyproject.toml
# change), then runs what was asked.
#   workflow/run.sh main   [snakemake args]  the embedded default, then the HTML report
#   workflow/run.sh test   [pytest args]     the test suite
#   workflow/run.sh snakemake ...            any command inside the environment
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${COMPBENCH_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[compbench] creating $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.compbench-installed"
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[compbench] installing pinned requirements into $venv (first time: a few minutes, ~4.6 GB)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r requirements.txt
  "$venv/bin/python" -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
cmd="${1:-main}"
[ $# -gt 0 ] && shift
case "$cmd" in
  main)
    cores="${COMPBENCH_CORES:-$(nproc)}"
    snakemake --cores "$cores" --workflow-profile profiles/default "$@"
    snakemake --cores "$cores" --workflow-profile profiles/default --report results/report.html "$@"
    echo "[compbench] report: results/report.html" >&2
    ;;
  test)
    exec python -m pytest "$@"
    ;;
  *)
    exec "$cmd" "$@"
    ;;
esac

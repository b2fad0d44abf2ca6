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

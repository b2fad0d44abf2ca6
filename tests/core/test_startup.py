"""Job start-up (issue 18): table, figure and report jobs start without torch or transformers.

Each such script's start-up imports (compbench.deps.startup_imports: the import
statements it runs before its first line of work) run in a fresh interpreter in which
importing torch or transformers raises, so a module that imports either at its top,
directly or through another module, fails the test naming the script and the import."""

import json
import subprocess
import sys

import pytest

from compbench import deps
from conftest import ROOT

SCRIPTS = ROOT / "workflow" / "scripts"
REPORT_SCRIPTS = {"concat_tables", "table_html", "verdicts", "fusion_summary"}
LIGHT = sorted(
    p.stem for p in SCRIPTS.glob("*.py") if p.stem.startswith("figure_") or p.stem.endswith("_table") or p.stem in REPORT_SCRIPTS
)
BLOCKED = ("torch", "transformers")

PROBE = r"""
import importlib.abc, json, sys, traceback

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} imported at start-up")
        return None

BLOCKED = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Block())
failures = {}
for script, imports in json.loads(sys.stdin.read()).items():
    try:
        exec("\n".join(imports), {})
    except ImportError as e:
        tb = [f"{f.filename.rsplit('/workflow/', 1)[-1]}:{f.lineno}" for f in traceback.extract_tb(e.__traceback__)]
        failures[script] = f"{e} (via {' -> '.join(tb[1:])})"
print(json.dumps({"failures": failures, "loaded": sorted(m for m in BLOCKED if m in sys.modules)}))
"""


def run_probe(scripts, blocked=BLOCKED) -> dict:
    imports = {s: deps.startup_imports(str(SCRIPTS / f"{s}.py")) for s in scripts}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(blocked)],
        input=json.dumps(imports),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_light_scripts_are_the_table_figure_and_report_jobs():
    assert {"figure_spectra", "figure_perplexity", "pruning_table", "concat_tables", "table_html", "verdicts"} <= set(LIGHT)
    assert len(LIGHT) >= 20


def test_table_figure_and_report_jobs_start_without_torch_or_transformers():
    out = run_probe(LIGHT)
    assert out["failures"] == {} and out["loaded"] == [], out


def test_the_probe_catches_a_script_that_imports_torch():
    """The blocker is live: a compute job's start-up fails it, naming the import chain."""
    out = run_probe(["perplexity"])
    assert "perplexity" in out["failures"] and "imported at start-up" in out["failures"]["perplexity"]


@pytest.mark.parametrize("source, want", [
    ("import a\nwith x:\n    from b import c\nif y:\n    import d\nelse:\n    import e\ntry:\n    import f\nexcept E:\n    import g\n", 6),
    ("def f():\n    import torch\nclass C:\n    import torch\nimport h\n", 1),
])  # fmt: skip
def test_startup_imports_are_the_module_level_ones(tmp_path, source, want):
    (tmp_path / "s.py").write_text(source)
    got = deps.startup_imports(str(tmp_path / "s.py"))
    assert len(got) == want and not any("torch" in g for g in got)

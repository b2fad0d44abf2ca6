"""The interventions' names, categories and settings, read from their source (torch-free).

The compose config check (``compose/check.py``) and grid (``compose/grid.py``: the pairs of
categories, each run's code inputs) run in Snakemake's own process at every DAG build;
importing the intervention modules there imports torch (~1.3 s of CPU on every
``snakemake -n``, a quarter of the embedded default's DAG build). The same facts are
in the source: ``methods.py`` imports one module per method, and each method is a function
decorated with ``@register(name, category, needs_calibration=...)`` whose settings are its
parameters after ``(model, ctx)``. ``tests/compose/test_compose.py`` checks that this
catalogue equals the registry, so a new method still needs only its file and its import
line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "compbench.compose.interventions"


@dataclass(frozen=True)
class Entry:
    name: str
    category: str
    params: tuple[str, ...]  # the settings a config may give (Intervention.params_allowed)
    needs_calibration: bool = False
    module: str = ""  # the module that defines and registers it


def _registered_modules() -> list[str]:
    tree = ast.parse((HERE / "methods.py").read_text())
    return [a.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == PACKAGE for a in node.names]


def _entries(source: str, module: str) -> list[Entry]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for d in node.decorator_list:
            if isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "register":
                args = [ast.literal_eval(a) for a in d.args]
                kw = {k.arg: ast.literal_eval(k.value) for k in d.keywords}
                names = ["name", "category", "needs_calibration"]
                spec = {**dict(zip(names, args)), **kw}
                a = node.args
                params = [p.arg for p in [*a.posonlyargs, *a.args]][2:]
                params += [a.vararg.arg] if a.vararg else []
                params += [p.arg for p in a.kwonlyargs] + ([a.kwarg.arg] if a.kwarg else [])
                needs = bool(spec.get("needs_calibration", False))
                out.append(Entry(spec["name"], spec["category"], tuple(params), needs, module))
    return out


@lru_cache(maxsize=None)
def catalogue() -> dict[str, Entry]:
    """Every registered intervention: name -> :class:`Entry`."""
    return {e.name: e for mod in _registered_modules() for e in _entries((HERE / f"{mod}.py").read_text(), f"{PACKAGE}.{mod}")}

"""The package's import graph, read from the source (no module is imported).

Snakemake does not track Python imports, so every rule lists its code as an
input: the package files that its script uses, transitively. They are derived
here, once per parse, from the ``import`` statements of each module (top level
and inside functions alike: a lazy import is still a dependency), so an edit of
a module reruns exactly the jobs whose script reaches it, and the lists cannot
drift from the code.

Torch-free and fast (``ast`` only): it runs at every DAG build.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "compbench"
ROOT = Path(__file__).resolve().parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> list[str]:
    """The package modules an imported name stands for: the module itself if it is
    one, else its longest prefix that is (``compbench.prune.Pattern`` -> ``compbench.prune``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return [name] if name.startswith(PACKAGE) else []


def imports_of_source(source: str, module: str | None = None, is_package: bool = False) -> set[str]:
    """Package modules imported anywhere in ``source`` (``module`` resolves relative imports).
    Importing a submodule also runs its parent packages' ``__init__``, so those count too."""
    known = modules()
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [f"{mod}.{a.name}" for a in node.names] + [mod]
        for n in names:
            if n == PACKAGE or n.startswith(PACKAGE + "."):
                for m in _resolve(n, known):
                    parts = m.split(".")
                    out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


@lru_cache(maxsize=None)
def graph() -> dict[str, frozenset[str]]:
    """Module -> the package modules it imports directly."""
    out = {}
    for name, path in modules().items():
        deps = imports_of_source(path.read_text(), name, path.name == "__init__.py")
        deps.discard(name)
        out[name] = frozenset(deps)
    return out


def closure(roots, skip=()) -> set[str]:
    """``roots`` and everything they import, transitively. Modules in ``skip`` (and
    what only they import) are left out, but a skipped module named in ``roots`` is kept."""
    g = graph()
    seen: set[str] = set()
    todo = list(roots)
    skip = set(skip)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(d for d in g.get(m, ()) if d not in skip)
    return seen


@lru_cache(maxsize=None)
def script_modules(script: str) -> frozenset[str]:
    """Package modules a script file imports directly."""
    return frozenset(imports_of_source(Path(script).read_text()))


def files(mods) -> list[str]:
    """Sorted source files of the given modules."""
    known = modules()
    return sorted(str(known[m]) for m in mods if m in known)


def script_code(script: str, skip=(), extra=()) -> list[str]:
    """The package files a script depends on: what it imports, transitively (see
    :func:`closure` for ``skip``), plus ``extra`` modules and their imports."""
    return files(closure(set(script_modules(script)) | set(extra), skip=skip))


def cycles() -> list[list[str]]:
    """Import cycles between modules, as lists of module names (empty when there are none).
    A module's parent packages count as imported by it (Python runs their ``__init__`` first)."""
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def startup_imports(script: str) -> list[str]:
    """The import statements a script runs when it starts, as source lines: those at
    module level, also inside ``with`` / ``if`` / ``try`` / loops, never inside a
    function or class (those run only when called). What a job pays before it works
    (``workflow/benchmarks/profile_jobs.py``, ``tests/core/test_startup.py``)."""
    out: list[str] = []

    def walk(body) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out.append(ast.unparse(node))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            else:
                for name in ("body", "orelse", "finalbody"):
                    walk(getattr(node, name, []) or [])
                for handler in getattr(node, "handlers", []) or []:
                    walk(handler.body)

    walk(ast.parse(Path(script).read_text()).body)
    return out

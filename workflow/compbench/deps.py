"""The package's import graph, read from the source (no module is imported).

Snakemake does not track Python imports, so every rule lists its code as an
input: the package files that its script uses, transitively. They are derived
here, once per parse, from the ``import`` statements of each module (top level
and inside functions alike: a lazy import is still a dependency), so an edit of
a module reruns exactly the jobs whose script reaches it, and the lists cannot
drift from the code.

Torch-free and fast (``ast`` only): it runs at every DAG build. Parsing the package's ~160
modules was a tenth of a ``snakemake -n`` (0.42 of ~4 s, 2-core AMD EPYC, 2026-12-06), so each
module's imports are kept in ``.snakemake/compbench-imports.json`` beside the sources, keyed by
a hash of the module's name and bytes: an edited module misses and is parsed again, and the
file is a cache only (unreadable or malformed: ignored and rewritten; not writable: not kept).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

PACKAGE = "compbench"
ROOT = Path(__file__).resolve().parent
CACHE = ROOT.parents[1] / ".snakemake" / "compbench-imports.json"  # the sources' root: workflow/compbench -> root


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


def imported_names(source: str, module: str | None = None, is_package: bool = False) -> list[str]:
    """Every dotted name ``source`` imports anywhere, relative imports made absolute with
    ``module`` (skipped without it): ``from a.b import c`` gives ``a.b.c`` and ``a.b``."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
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
            out += [f"{mod}.{a.name}" for a in node.names] + [mod]
    return out


def package_modules(names) -> set[str]:
    """The package modules that imported ``names`` stand for. Importing a submodule also
    runs its parent packages' ``__init__``, so those count too."""
    known = modules()
    out: set[str] = set()
    for n in names:
        if n == PACKAGE or n.startswith(PACKAGE + "."):
            for m in _resolve(n, known):
                parts = m.split(".")
                out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def imports_of_source(source: str, module: str | None = None, is_package: bool = False) -> set[str]:
    """Package modules imported anywhere in ``source`` (``module`` resolves relative imports)."""
    return package_modules(imported_names(source, module, is_package))


def _read_cache(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    ok = isinstance(data, dict) and all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values())
    return data if ok else {}


def _write_cache(path: Path, data: dict[str, list[str]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # e.g. its folder is a file
            pass


def _key(name: str, is_package: bool, source: bytes) -> str:
    return hashlib.sha256(f"{name}\0{int(is_package)}\0".encode() + source).hexdigest()


@lru_cache(maxsize=None)
def graph() -> dict[str, frozenset[str]]:
    """Module -> the package modules it imports directly (the imported names of each
    module from :data:`CACHE` where its bytes are unchanged)."""
    cache = _read_cache(CACHE)
    used: dict[str, list[str]] = {}
    out = {}
    for name, path in modules().items():
        source = path.read_bytes()
        is_package = path.name == "__init__.py"
        key = _key(name, is_package, source)
        names = cache.get(key)
        if names is None:
            names = imported_names(source.decode(), name, is_package)
        used[key] = names
        deps = package_modules(names)
        deps.discard(name)
        out[name] = frozenset(deps)
    if used != cache:  # a module added, edited or removed: keep exactly this parse's entries
        _write_cache(CACHE, used)
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

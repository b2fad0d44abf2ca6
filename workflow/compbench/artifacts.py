"""Atomic, safe, checksummed artifact I/O.

Every artifact is written under a temporary name in the same directory and
renamed into place when complete, so an interrupted job never leaves a file
(or directory) that looks finished. Weights are safetensors only: nothing in
this package unpickles a file.

Every artifact also gets a provenance record of its content, written when it
is complete: a directory holds ``.compbench-artifact.json`` (SHA-256 and size of
each file in it), a file has a hidden sibling ``.<name>.compbench-artifact.json``.
The readers here (and :func:`compbench.variants.load` for directories) check
the record on load, so a file damaged after it was written (truncated by a full
disk, overwritten, half copied) is refused with a :class:`CorruptArtifact`
naming it; :func:`verify_tree` checks every record under ``results/``
(``workflow/run.sh verify``). Snakemake itself sees only a directory's mtime.

Modes: a written file or directory gets the process umask's mode (files 0666,
directories 0777, minus the umask), as ``open`` would give it: safetensors'
``save_file`` and ``tempfile`` create 0600, which colleagues sharing a group
project folder could not read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pandas as pd


class CorruptArtifact(RuntimeError):
    """An artifact exists but cannot be read back (truncated, wrong format)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` on success.

    Works for files and directories. On failure the temporary is removed and an
    existing ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # the caller creates a file or a directory there
    tmp = Path(tmp)
    try:
        yield tmp
        nested = _in_atomic_dir(path)  # a file of a directory being written: the directory's record covers it
        if tmp.is_dir():
            _write_record(tmp / RECORD, _describe_dir(tmp))
        set_umask_mode(tmp)
        sidecar = record_path(path)
        if not tmp.is_dir() and not nested:
            sidecar.unlink(missing_ok=True)  # never a stale record beside a new file
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
        if not path.is_dir() and not nested:
            _write_record(sidecar, {"kind": "file", "files": {path.name: _describe_file(path)}})
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


# ---------------------------------------------------------------- provenance records and modes
RECORD = ".compbench-artifact.json"


def record_path(path: str | os.PathLike) -> Path:
    """Where the record of ``path`` lives: inside a directory, beside a file."""
    path = Path(path)
    return path / RECORD if path.is_dir() else path.with_name(f".{path.name}{RECORD}")


def _in_atomic_dir(path: Path) -> bool:
    return any(p.name.startswith(".") and p.name.endswith(".tmp") for p in path.parents)


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _describe_file(path: Path) -> dict:
    return {"sha256": sha256(path), "bytes": path.stat().st_size}


def _describe_dir(root: Path) -> dict:
    files = {str(p.relative_to(root)): _describe_file(p) for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(RECORD)}
    return {"kind": "directory", "files": files}


def _write_record(where: Path, record: dict) -> None:
    record = {**record, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    fd, tmp = tempfile.mkstemp(prefix=where.name + ".", suffix=".tmp", dir=where.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    set_umask_mode(Path(tmp))
    os.replace(tmp, where)


def umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def set_umask_mode(path: Path) -> None:
    """Give ``path`` (recursively) the mode a plain ``open``/``mkdir`` would: 0666/0777 minus the umask."""
    mask = umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def check_record(path: str | os.PathLike) -> None:
    """Raise CorruptArtifact if ``path`` (a file or a directory artifact) differs from its record.

    A file is checked against its own record or the record of the directory
    artifact holding it (up to three levels up); no record, nothing to check."""
    path = Path(path)
    if path.is_dir():
        problems = verify(path)
    else:
        problems = []
        for rec_file, base in [(record_path(path), path.parent)] + [(d / RECORD, d) for d in list(path.parents)[:3]]:
            if rec_file.is_file():
                problems = [p for p in verify(rec_file, base, only=str(path.relative_to(base)))]
                break
    if problems:
        raise CorruptArtifact("; ".join(problems))


def verify(record_or_dir: str | os.PathLike, base: Path | None = None, only: str | None = None) -> list[str]:
    """Differences between an artifact and its record: one message per damaged file (empty: intact)."""
    rec_file = Path(record_or_dir)
    if rec_file.is_dir():
        rec_file, base = rec_file / RECORD, rec_file
        if not rec_file.is_file():
            return []
    base = base or rec_file.parent
    try:
        files = json.loads(rec_file.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{rec_file}: unreadable provenance record ({e})"]
    out = []
    for rel, want in files.items():
        if only is not None and rel != only:
            continue
        f = base / rel
        if not f.is_file():
            out.append(f"{f}: missing (recorded {want['bytes']} bytes)")
        elif f.stat().st_size != want["bytes"]:
            out.append(f"{f}: {f.stat().st_size} bytes, recorded {want['bytes']} (truncated or overwritten)")
        elif sha256(f) != want["sha256"]:
            out.append(f"{f}: content differs from its record (sha256 {want['sha256'][:12]}...)")
    return out


def verify_tree(root: str | os.PathLike) -> dict[Path, list[str]]:
    """Every artifact under ``root`` with a provenance record -> its problems (only damaged ones)."""
    root = Path(root)
    broken = {}
    for rec in sorted(root.rglob(f"*{RECORD}")):
        if ".tmp" in rec.parent.name:
            continue
        if rec.name == RECORD:  # a directory artifact
            artifact, problems = rec.parent, verify(rec)
        else:  # .<name>.compbench-artifact.json beside a file
            artifact = rec.with_name(rec.name[1 : -len(RECORD)])
            if not artifact.exists():
                # gone as a whole (Snakemake removes the outputs of a job it reruns or that was
                # interrupted; its record stays): Snakemake sees a missing output and rebuilds it
                continue
            problems = verify(rec)
        if problems:
            broken[artifact] = problems
    return broken


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike):
    check_record(path)
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptArtifact(f"{path}: not valid JSON ({e})") from e


def write_table(path: str | os.PathLike, df: pd.DataFrame) -> None:
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        df.to_csv(tmp, index=False)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    check_record(path)
    with open(path, "rb") as f:  # every table written here ends with a newline
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                raise CorruptArtifact(f"{path}: truncated table (its last line is incomplete)")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise CorruptArtifact(f"{path}: not a readable CSV table ({e})") from e


def save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in tensors.items()}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})
        _sort_metadata(tmp)


def _sort_metadata(path) -> None:
    """Put a safetensors header's metadata keys in sorted order, in place. safetensors writes
    them in the order of a Rust HashMap, which differs from one save to the next: the same
    tensors and metadata gave files that differed in bytes (and in checksum) run to run."""
    import json
    import struct

    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
        header = json.loads(raw)
        meta = header.get("__metadata__")
        if not meta or len(meta) < 2:
            return
        header["__metadata__"] = dict(sorted(meta.items()))
        body = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(body) > n:
            return  # not the compact form this expects: leave the file as written
        f.seek(8)
        f.write(body + b" " * (n - len(body)))  # the header keeps its length (and padding)


def load_tensors(path: str | os.PathLike, device: str = "cpu", metadata: bool = False):
    """The tensors of a safetensors artifact, checked against its record; with ``metadata``
    also the string metadata it was saved with (:func:`save_tensors`): ``(tensors, metadata)``."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: artifact missing")
    check_record(path)
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise CorruptArtifact(f"{path}: not a readable safetensors file ({e})") from e
    return (tensors, meta) if metadata else tensors


def load_arrays(path: str | os.PathLike) -> dict:
    """:func:`load_tensors` as numpy arrays, without importing torch (figure and table
    jobs start without it). Checked against the provenance record like every reader."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: artifact missing")
    check_record(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CorruptArtifact(f"{path}: not a readable safetensors file ({e})") from e


def content_id(path: str | os.PathLike) -> str:
    """One SHA-256 for an artifact's content: of its provenance record's file list (the
    SHA-256 and size of every file; the record's write time left out), or, for a file or
    directory without a record (a user's own model), of its files read now."""
    path = Path(path)
    rec = record_path(path)
    files = None
    if rec.is_file():
        try:
            files = json.loads(rec.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            files = None
    if files is None:
        files = _describe_dir(path)["files"] if path.is_dir() else {path.name: _describe_file(path)}
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()

"""Atomic, safe artifact I/O.

Every artifact is written under a temporary name in the same directory and
renamed into place when complete, so an interrupted job never leaves a file
(or directory) that looks finished. Weights are safetensors only: nothing in
this package unpickles a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
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
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike):
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptArtifact(f"{path}: not valid JSON ({e})") from e


def write_table(path: str | os.PathLike, df: pd.DataFrame) -> None:
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        df.to_csv(tmp, index=False)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
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


def load_tensors(path: str | os.PathLike, device: str = "cpu") -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: artifact missing")
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as e:
        raise CorruptArtifact(f"{path}: not a readable safetensors file ({e})") from e

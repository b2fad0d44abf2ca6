"""A content-addressed cache of small results, kept outside any job's outputs (torch-free).

A job that evaluates many variants at once (rule ``perplexity``: one job per batch of
variants) reruns as a whole when any of its inputs changes, and Snakemake deletes its
outputs before it runs. The cache keeps "rerun only what changed" inside the job: each
variant's result is stored under the SHA-256 of everything it depends on -- the
variant's content (its provenance record, and its base model's), the evaluation data,
the settings, the code files and the library versions -- so a variant whose key is
unchanged is read back instead of recomputed, with exactly the numbers computed before.

An entry is one JSON file ``<root>/<key>.json`` holding the key, the parts it was made
from (to read what it depends on), the result rows and, optionally, extra detail behind
them (``extra``: e.g. the perplexity's per-window sums, which a cached row must restore
too), with a checksum of each; an entry that does not parse or match is a miss
(recomputed and rewritten), never an error.
``COMPBENCH_RESULT_CACHE=off`` makes every lookup a miss (timings, debugging); results
are still stored. Entries are never wrong, only unused: ``rm -r results/cache`` is safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from compbench.artifacts import content_id, set_umask_mode

ENV = "COMPBENCH_RESULT_CACHE"


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def files_id(paths, base: str | os.PathLike | None = None) -> dict[str, str]:
    """SHA-256 of each file's bytes, by its path relative to ``base`` (or its name), so
    the same code in another checkout gives the same ids."""
    out = {}
    for p in sorted(map(Path, paths)):
        rel = str(p.relative_to(base)) if base is not None and p.is_relative_to(base) else p.name
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def artifact_id(path: str | os.PathLike) -> str:
    """The content of an artifact (file or directory) as one SHA-256: from its provenance
    record when it has one (:func:`compbench.artifacts.content_id`)."""
    return content_id(path)


class ResultCache:
    def __init__(self, root: str | os.PathLike, read: bool | None = None):
        self.root = Path(root)
        self.read = os.environ.get(ENV, "on") != "off" if read is None else read

    @staticmethod
    def key(parts: dict) -> str:
        return _digest(parts)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> list[dict] | None:
        """The rows stored under ``key``, or None (absent, unreadable, or reads disabled)."""
        got = self.get_with_extra(key)
        return None if got is None else got[0]

    def get_with_extra(self, key: str) -> tuple[list[dict], object] | None:
        """(rows, extra) stored under ``key`` (extra None when the entry has none), or None."""
        if not self.read:
            return None
        try:
            entry = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or entry.get("rows_sha256") != _digest(entry.get("rows")):
            return None
        if entry.get("extra_sha256", _digest(None)) != _digest(entry.get("extra")):
            return None
        return entry["rows"], entry.get("extra")

    def put(self, key: str, parts: dict, rows: list[dict], extra=None) -> None:
        """Store ``rows`` (JSON-able dicts) and ``extra`` (JSON-able, optional) under ``key``, atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        entry = {"key": key, "parts": parts, "rows": rows, "rows_sha256": _digest(rows)}
        if extra is not None:
            entry.update(extra=extra, extra_sha256=_digest(extra))
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.root)
        with os.fdopen(fd, "w") as f:  # keys in their order: rows read back make the same table, column for column
            json.dump(entry, f, indent=1, default=str)
            f.write("\n")
        set_umask_mode(Path(tmp))
        os.replace(tmp, self.path(key))


def cached(cache: ResultCache | None, parts, compute, extra_type: type) -> tuple[tuple[list[dict], object], str, str | None]:
    """``((rows, extra), how, key)``: the entry stored under the key of ``parts()`` when it
    holds an ``extra`` of ``extra_type`` (how = "from cache"), else ``compute()``'s result,
    stored (how = "evaluated"). Without a cache (None) always ``compute()``, key None."""
    if cache is None:
        return compute(), "evaluated", None
    p = parts()
    key = cache.key(p)
    got = cache.get_with_extra(key)
    if got is not None and isinstance(got[1], extra_type):
        return got, "from cache", key
    got = compute()  # absent, or an entry without its extra: evaluate again
    cache.put(key, p, *got)
    return got, "evaluated", key

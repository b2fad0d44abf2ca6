"""The offline English corpus of the embedded default.

Sources are registered by name. Each one is obtained without the Hugging Face
hub and without root: the two gensim sources come from the test data shipped in
gensim's wheel, fetched with ``pip download --no-deps`` (PyPI is a package
registry the project already needs) and read straight out of the zip; nothing is
installed and nothing is committed.

* ``wiki``: the first ~30 articles of an English Wikipedia dump
  (``enwiki-latest-pages-articles1.xml-...-shortened.bz2``), CC BY-SA 3.0; wiki
  markup is stripped here.
* ``lee``: the Lee background news corpus (``lee_background.cor``), 300 short
  Australian news articles.

Each source is cleaned, cut into documents, and split *per source* into
train / validation / test by a seeded shuffle of whole documents, so the split
is deterministic and no document straddles two splits.
"""

from __future__ import annotations

import bz2
import glob
import html
import os
import random
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from compbench.registry import Registry

SOURCES: Registry[Callable[[Path], list[str]]] = Registry("corpus source")

GENSIM_VERSION = "4.4.0"
SPLITS = ("train", "validation", "test")


def fetch_wheel(package: str, version: str, dest: Path, what: str = "the corpus source wheel") -> Path:
    """Return a local wheel of ``package==version``, downloading it if absent (``what`` names it in errors)."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_")
    found = sorted(glob.glob(str(dest / f"{stem}-{version}-*.whl")))
    if found:
        return Path(found[0])
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(glob.glob(str(dest / f"{stem}-{version}-*.whl")))
    if proc.returncode != 0 or not found:
        raise RuntimeError(
            f"could not obtain {what} {package}=={version} with pip download "
            f"(is the package registry reachable?): {proc.stderr.strip()[-500:]}"
        )
    return Path(found[0])


def _gensim_member(cache: Path, member: str) -> bytes:
    wheel = fetch_wheel("gensim", GENSIM_VERSION, cache)
    with zipfile.ZipFile(wheel) as z:
        return z.read(f"gensim/test/test_data/{member}")


_WIKI_PAGE = re.compile(r"<page>.*?<title>(.*?)</title>.*?<text[^>]*>(.*?)</text>", re.S)


def strip_wiki_markup(text: str) -> str:
    """Turn MediaWiki source into plain prose paragraphs (good enough for an LM corpus)."""
    t = html.unescape(text)
    t = re.sub(r"<!--.*?-->", "", t, flags=re.S)
    t = re.sub(r"<ref[^>/]*/>", "", t)
    t = re.sub(r"<ref[^>]*>.*?</ref>", "", t, flags=re.S)
    for _ in range(3):  # nested templates
        t = re.sub(r"\{\{[^{}]*\}\}", "", t)
    t = re.sub(r"\{\|.*?\|\}", "", t, flags=re.S)  # tables
    t = re.sub(r"\[\[(?:File|Image|Category|[a-z\-]{2,12}):[^\]]*\]\]", "", t)
    t = re.sub(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]", r"\1", t)
    t = re.sub(r"\[https?://\S+ ([^\]]*)\]", r"\1", t)
    t = re.sub(r"\[https?://\S+\]", "", t)
    t = re.sub(r"<[^>]+>", "", t)
    t = re.sub(r"'{2,}", "", t)
    paras = []
    for line in t.split("\n"):
        line = line.strip()
        if not line or line[0] in "|!{}*#:;=" or line.startswith("__"):
            continue
        line = re.sub(r"\s+", " ", line)
        if len(line) >= 80:
            paras.append(line)
    return "\n".join(paras)


@SOURCES.register("wiki")
def wiki(cache: Path) -> list[str]:
    raw = bz2.decompress(_gensim_member(cache, "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"))
    docs = []
    for _title, body in _WIKI_PAGE.findall(raw.decode("utf-8")):
        if body.lstrip().lower().startswith("#redirect"):
            continue
        clean = strip_wiki_markup(body)
        # Long articles become several documents of whole paragraphs, so the
        # document-level split spreads every article's topic over the splits.
        chunk: list[str] = []
        for para in clean.split("\n"):
            chunk.append(para)
            if sum(map(len, chunk)) > 4000:
                docs.append("\n".join(chunk))
                chunk = []
        if chunk and sum(map(len, chunk)) > 400:
            docs.append("\n".join(chunk))
    return docs


@SOURCES.register("lee")
def lee(cache: Path) -> list[str]:
    raw = _gensim_member(cache, "lee_background.cor").decode("utf-8", errors="replace")
    return [re.sub(r"\s+", " ", line).strip() for line in raw.splitlines() if len(line.strip()) > 40]


@dataclass(frozen=True)
class SplitSpec:
    validation: float
    test: float
    seed: int


def split_documents(docs: list[str], spec: SplitSpec) -> dict[str, list[str]]:
    """Seeded shuffle of whole documents, then cut into test / validation / train."""
    if not 0 < spec.validation < 1 or not 0 < spec.test < 1 or spec.validation + spec.test >= 1:
        raise ValueError(f"split fractions validation={spec.validation}, test={spec.test} must be in (0, 1) and sum below 1")
    order = list(range(len(docs)))
    random.Random(spec.seed).shuffle(order)
    n = len(docs)
    n_test = max(1, round(n * spec.test))
    n_val = max(1, round(n * spec.validation))
    idx = {
        "test": sorted(order[:n_test]),
        "validation": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }
    return {k: [docs[i] for i in v] for k, v in idx.items()}


# Sources sized relative to the others (called with ``other_chars``, the
# characters of every other source, and their options from the config).
RELATIVE = {"tasks", "knowledge"}


@SOURCES.register("tasks")
def tasks(cache: Path, other_chars: int = 0, share: float = 0.1, eval_items: int = 200, seed: int = 0) -> list[str]:
    """Generated task items (compbench.tasks), ``share`` of the corpus characters;
    the items held out for zero-shot evaluation are never among them."""
    from compbench import tasks as generated

    return generated.corpus_documents(share, other_chars, eval_items, seed)


@SOURCES.register("knowledge")
def knowledge(cache: Path, other_chars: int = 0, share: float = 0.05, people: int = 48, agents: int = 24, seed: int = 0) -> list[str]:
    """The generated knowledge world (compbench.knowledge): people's attributes and
    the "hazardous" toxins, ``share`` of the corpus characters (composability study)."""
    from compbench.knowledge import World

    return World(people, agents, seed).corpus_documents(share, other_chars)


def build(
    sources: list[str], spec: SplitSpec, cache: Path, out_dir: Path, max_chars: int | None = None, options: dict | None = None
) -> dict:
    """Write ``<out_dir>/<source>/<split>.txt`` (documents separated by blank lines).
    ``options``: source name -> keyword arguments of a RELATIVE source."""
    from compbench.artifacts import write_text

    stats = {}
    other_chars = 0
    for name in sorted(sources, key=lambda s: s in RELATIVE):  # relative sources last, order otherwise kept
        fn = SOURCES.get(name)
        if name in RELATIVE:
            docs = fn(cache, other_chars=other_chars, **(options or {}).get(name, {}))
        else:
            docs = fn(cache)
        if max_chars and name not in RELATIVE:
            kept, total = [], 0
            for d in docs:
                if total >= max_chars:
                    break
                kept.append(d)
                total += len(d)
            docs = kept
        if name not in RELATIVE:
            other_chars += sum(map(len, docs))
        parts = split_documents(docs, spec)
        for split, ds in parts.items():
            write_text(out_dir / name / f"{split}.txt", "\n\n".join(ds) + "\n")
        stats[name] = {split: {"documents": len(ds), "chars": sum(map(len, ds))} for split, ds in parts.items()}
    return stats


def read_split(corpus_dir: str | os.PathLike, source: str, split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    path = Path(corpus_dir) / source / f"{split}.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: corpus split missing (known sources: {', '.join(SOURCES.names())})")
    return path.read_text()


def documents(text: str) -> list[str]:
    return [d for d in text.split("\n\n") if d.strip()]

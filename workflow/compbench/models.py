"""Model sources behind one interface, and loading a model directory.

A model in the config is ``{source: tiny | hf, ...}``:

* ``hf``: a Hugging Face hub id fetched with ``huggingface_hub.snapshot_download``
  into ``results/models/<name>/`` (weights as safetensors only, never pickles);
* ``tiny``: a LLaMA-architecture model pretrained by the workflow (see
  :mod:`compbench.pretrain`).

Either way the result is a ``save_pretrained`` directory that
``AutoModelForCausalLM.from_pretrained`` and lm-eval load like any hub model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

SAFE_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.txt", "*.py"]


class ModelSourceError(RuntimeError):
    pass


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


def seq_len(model, cap: int | None = None) -> int:
    n = int(getattr(model.config, "max_position_embeddings", 2048))
    return min(n, cap) if cap else n

"""The decoder blocks of a causal LM and the linear layers inside them.

Every line that walks a model block by block (spectra, pruning, calibration
statistics, low-rank, interventions) finds the blocks and their linears here."""

from __future__ import annotations

from torch import nn


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a causal LM: ``model.model.layers`` (LLaMA, Mistral,
    Qwen, ...), ``model.model.decoder.layers`` (OPT), ``transformer.h`` (GPT-2),
    else the first ModuleList of modules that contain linears."""
    for path in ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers", "layers"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj):
            return obj
    for _, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) and any(isinstance(m, nn.Linear) for m in mod[0].modules()):
            return mod
    raise ValueError(f"{type(model).__name__}: found no decoder blocks (a ModuleList of blocks holding nn.Linear layers)")


def linear_modules(model: nn.Module) -> list[tuple[int, str, nn.Linear]]:
    """Every nn.Linear inside each decoder block, in model order, as
    ``(block index, full module name, module)``. Embeddings and ``lm_head`` are
    outside the blocks and so excluded (7 per LLaMA block: q, k, v, o, gate, up, down)."""
    blocks = decoder_blocks(model)
    block_ids = {id(b): i for i, b in enumerate(blocks)}
    full_names = {id(m): n for n, m in model.named_modules()}
    out = []
    for block in blocks:
        prefix = full_names[id(block)]
        for name, mod in block.named_modules():
            if isinstance(mod, nn.Linear):
                out.append((block_ids[id(block)], f"{prefix}.{name}", mod))
    if not out:
        raise ValueError(f"{type(model).__name__}: its decoder blocks hold no nn.Linear")
    return out

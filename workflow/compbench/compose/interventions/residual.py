"""The residual stream at a decoder block's output, read and written with forward
hooks on the block, as the references do (WMDP's ``forward_with_cache`` on
``model.model.layers[l]``; MEMIT's ``nethook.TraceDict`` on ``layer_module_tmp``).

Not ``output_hidden_states``: in Hugging Face decoders its entry l + 1 is block l's
output for every block except the LAST, whose entry is taken after the final norm
(tested in tests/compose/test_compose_edit.py). A hook reads the pre-norm state at
every layer, the last one included."""

from __future__ import annotations

from contextlib import contextmanager

import torch


def n_blocks(model) -> int:
    return len(model.model.layers)


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def block_output(model, layer: int, **inputs) -> torch.Tensor:
    """Block ``layer``'s output (batch, seq, hidden) in a forward pass on ``inputs``
    (gradients flow unless called under ``torch.no_grad``)."""
    n = n_blocks(model)
    if not 0 <= layer < n:
        raise ValueError(f"layer {layer} out of range; allowed: 0..{n - 1}")
    cache = []
    handle = model.model.layers[layer].register_forward_hook(lambda mod, inp, out: cache.append(_first(out)))
    try:
        model(**inputs)
    finally:
        handle.remove()
    return cache[0]


@contextmanager
def edited_block_output(model, layer: int, fn):
    """While active, block ``layer``'s output ``h`` is replaced by ``fn(h)``."""

    def hook(mod, inp, out):
        return (fn(out[0]), *out[1:]) if isinstance(out, tuple) else fn(out)

    handle = model.model.layers[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()

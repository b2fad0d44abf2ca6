"""The quantisation methods (one import line each) and the driver.

Every method registers itself in :data:`compbench.quant.registry.QUANTISERS` when its
module is imported; importing this module loads them all.
"""

from __future__ import annotations

from compbench.quant import awq, gptq, rtn  # noqa: F401  (registration: one line per method)
from compbench.quant.registry import QUANTISERS, Quantised  # noqa: F401


def quantise_model(model, method: str, bits: int, group_size: int, calib_ids=None, device="cpu", keep: dict | None = None):
    """Quantise every decoder linear of ``model`` in place; ``(name -> Quantised, info)``.
    ``keep``: the masks of a pruned model, which stays pruned."""
    q = QUANTISERS.get(method)
    if q.needs_calibration and calib_ids is None:
        raise ValueError(f"quantisation method {method!r} needs calibration data")
    return q.fn(model, calib_ids, device, bits, group_size, keep)

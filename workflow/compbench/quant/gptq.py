"""GPTQ (Frantar et al. 2023): the composability line's implementation
(``compose/interventions/gptq.py``), its codes kept. On a pruned model the mask is
kept and pruned weights are compensated too (SparseGPT's joint mode)."""

from __future__ import annotations

from compbench.compose.interventions.gptq import gptq_model
from compbench.quant.registry import Quantised, register


@register("gptq", needs_calibration=True)
def gptq(model, calib_ids, device, bits: int, group_size: int, keep=None):
    out = {}
    err = gptq_model(
        model, calib_ids, device, bits, group_size, keep=keep, on_linear=lambda n, c: out.__setitem__(n, Quantised(c.to("cpu")))
    )
    return out, {"max_abs_change": max(err)}

"""AWQ (Lin et al. 2024): the composability line's implementation
(``compose/interventions/awq.py``), its codes and per-input-channel scales kept.
A pruned weight (0) stays 0 under any scale, so a pruned model stays pruned."""

from __future__ import annotations

from compbench.compose.interventions.awq import awq_model
from compbench.quant.registry import Quantised, register


@register("awq", needs_calibration=True)
def awq(model, calib_ids, device, bits: int, group_size: int, keep=None):
    out = {}
    alphas = awq_model(
        model, calib_ids, device, bits, group_size, on_linear=lambda n, c, s: out.__setitem__(n, Quantised(c.to("cpu"), s.detach().cpu()))
    )
    return out, {"mean_alpha": sum(alphas.values()) / len(alphas)}

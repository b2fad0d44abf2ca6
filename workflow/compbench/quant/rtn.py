"""Round-to-nearest (RTN): every group of weights on its own min-max grid, no data.
The baseline GPTQ and AWQ are measured against (``compbench.compose.quantize.rtn_codes``).
A pruned weight (0) lands on the zero code, so a pruned model stays pruned."""

from __future__ import annotations

from compbench.compose import quantize as Q
from compbench.quant.registry import Quantised, register


@register("rtn")
def rtn(model, calib_ids, device, bits: int, group_size: int, keep=None):
    from compbench.blocks import linear_modules

    out = {}
    for _, name, mod in linear_modules(model):
        W = mod.weight.data
        codes = Q.rtn_codes(W.float(), bits, group_size)
        W.copy_(codes.dequantise().to(W.dtype))
        out[name] = Quantised(codes.to("cpu"))
    return out, {}

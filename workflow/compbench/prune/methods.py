"""The pruning methods (one import line each) and the pruning driver.

Every method registers itself in :data:`compbench.prune.registry.PRUNERS` when its
module is imported; importing this module loads them all.
"""

from __future__ import annotations

from compbench.prune import magnitude, sparsegpt, wanda  # noqa: F401  (registration: one line per method)
from compbench.prune.registry import PRUNERS, Pattern, nm_prune_mask  # noqa: F401


def prune_model(model, method: str, ratios: dict[int, float] | None, nm: tuple[int, int] | None, calib_ids, device, batch_size: int = 8):
    """Prune every decoder linear in place. ``ratios``: block -> sparsity (from
    an allocation); ``nm``: an N:M pattern instead. Returns (masks, changed):
    keep-masks per linear, and the updated weights of methods that change values."""
    from compbench.blocks import linear_modules
    from compbench.calibration import sequential

    meth = PRUNERS.get(method)
    masks, changed = {}, {}

    def pattern(block: int) -> Pattern:
        return Pattern(n=nm[0], m=nm[1]) if nm else Pattern(ratio=float(ratios[block]))

    def prune_block(block, linears, stats):
        for name, mod in linears.items():
            W = mod.weight.data
            keep, new = meth.fn(W.float(), stats.get(name) if stats else None, pattern(block))
            W_final = (new if new is not None else W.float()) * keep
            mod.weight.data.copy_(W_final.to(W.dtype))
            masks[name] = keep.cpu()
            if meth.changes_values:
                changed[name] = mod.weight.data.detach().cpu().clone()

    if meth.needs_calibration:
        if calib_ids is None:
            raise ValueError(f"pruning method {method!r} needs calibration data")
        sequential(model, calib_ids, device, meth.needs_hessian, prune_block, batch_size)
    else:
        by_block: dict[int, dict] = {}
        for b, name, mod in linear_modules(model):
            by_block.setdefault(b, {})[name] = mod
        for b, linears in by_block.items():
            prune_block(b, linears, {})
    return masks, changed

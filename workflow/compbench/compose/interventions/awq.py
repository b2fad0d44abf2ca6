"""AWQ, activation-aware weight quantisation (Lin et al. 2024), a compression
intervention of the composability paper.

Per decoder linear, on the block's calibration inputs X (block by block, on the
compressed model's own activations): s_x = mean |x| per input channel; for α on
a grid in [0, 1), s = s_x^α normalised by sqrt(max(s)·min(s)) (the reference's
normalisation), Ŵ = Q(W·diag(s))·diag(s)⁻¹ with the group-wise round-to-nearest
quantiser; keep the α minimising ‖X Wᵀ − X Ŵᵀ‖² (the paper's Eq. 5 search). The
reference scales groups of linears sharing an input and folds 1/s into the
preceding norm; scaling each linear on its own is the same search for the
weight, with s kept inside the dequantised weight. No clipping search (the
reference's second, optional step)."""

from __future__ import annotations

import torch

from compbench.compose import quantize as Q
from compbench.compose.interventions.registry import register


def awq_codes(W: torch.Tensor, X: torch.Tensor, bits: int, group_size: int, grid: int = 20, sym: bool = False):
    """(codes, s, α): the best scaled quantisation of W for inputs X (rows = tokens):
    the codes of W·diag(s), so that Ŵ = dequant(codes)·diag(s)⁻¹."""
    W = W.float()
    X = X.float()
    sx = X.abs().mean(0).clamp_min(1e-8)
    ref = X @ W.T
    best = (None, None, None, float("inf"))
    for i in range(grid):
        alpha = i / grid
        s = sx.pow(alpha)
        s = s / (s.max() * s.min()).sqrt()
        codes = Q.rtn_codes(W * s, bits, group_size, sym)
        Wq = codes.dequantise() / s
        err = float(((X @ Wq.T - ref) ** 2).sum())
        if err < best[3]:
            best = (codes, s, alpha, err)
    return best[0], best[1], best[2]


def awq_matrix(W: torch.Tensor, X: torch.Tensor, bits: int, group_size: int, grid: int = 20, sym: bool = False):
    """(Ŵ, α): the best scaled quantisation of W for inputs X (rows = tokens)."""
    codes, s, alpha = awq_codes(W, X, bits, group_size, grid, sym)
    return codes.dequantise() / s, alpha


def awq_model(model, calib_ids, device, bits: int, group_size: int, grid: int = 20, max_tokens: int = 4096, on_linear=None) -> dict:
    """AWQ on every decoder linear, block by block on the quantised model's own
    activations; weights replaced by their dequantised values. ``on_linear(name, codes, s)``
    sees every linear's codes and scales. Returns each linear's α."""
    from compbench.blocks import decoder_blocks, linear_modules
    from compbench.calibration import _block_out, capture_block_inputs

    blocks = decoder_blocks(model)
    names: dict = {}
    for b, name, mod in linear_modules(model):
        names.setdefault(b, {})[name] = mod
    xs, kw = capture_block_inputs(model, blocks, calib_ids, device)
    alphas = {}
    with torch.no_grad():
        for b, block in enumerate(blocks):
            inputs: dict = {n: [] for n in names.get(b, {})}
            hooks = [
                m.register_forward_hook(lambda mod, inp, out, n=n: inputs[n].append(inp[0].reshape(-1, inp[0].shape[-1])))
                for n, m in names.get(b, {}).items()
            ]
            try:
                for x in xs:
                    block(x, **kw)
            finally:
                for h in hooks:
                    h.remove()
            for n, m in names.get(b, {}).items():
                X = torch.cat(inputs[n])[:max_tokens]
                codes, s, alphas[n] = awq_codes(m.weight.data, X, bits, group_size, grid)
                m.weight.data.copy_((codes.dequantise() / s).to(m.weight.dtype))
                if on_linear is not None:
                    on_linear(n, codes, s)
            xs = [_block_out(block(x, **kw)) for x in xs]
    return alphas


@register("awq", "compress", needs_calibration=True)
def awq(model, ctx, bits: int = 4, group_size: int = 128, grid: int = 20, max_tokens: int = 4096) -> dict:
    alphas = awq_model(model, ctx.calib_ids, ctx.device, bits, group_size, grid, max_tokens)
    return {
        "bits": bits,
        "group_size": group_size,
        "avg_bits": Q.avg_bits(bits, group_size),
        "mean_alpha": sum(alphas.values()) / len(alphas),
    }

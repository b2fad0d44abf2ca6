"""GPTQ weight quantisation (Frantar et al. 2023, Algorithm 1), a compression
intervention of the composability paper.

For every decoder linear, block by block on the compressed model's own inputs
(compbench.calibration.sequential): H = (2/n) Σ X Xᵀ, dampened by 1 % of its
mean diagonal, U = upper Cholesky factor of H⁻¹ (shared with SparseGPT). Columns
are quantised in order, in blocks of 128; the quantiser's scale and zero of a
group of ``group_size`` columns (the last group may be shorter) are fixed when the loop enters the group (the
reference with static_groups=False); after quantising column q, the error
err = (w_q − quant(w_q)) / U_qq updates the block's remaining columns,
W[:, q:] −= err · U[q, q:] (Algorithm 1's δ_F), and once per block the columns
after it (lazy batch update). Weights are replaced by their dequantised values.
"""

from __future__ import annotations

import torch

from compbench.compose import quantize as Q
from compbench.compose.interventions.registry import register

BLOCKSIZE = 128


def gptq_codes(
    W: torch.Tensor,
    H: torch.Tensor,
    bits: int,
    group_size: int,
    sym: bool = False,
    blocksize: int = BLOCKSIZE,
    keep: torch.Tensor | None = None,
) -> Q.Codes:
    """GPTQ's integer codes of ``W`` (out × in) with input Hessian ``H``.

    ``keep`` (a boolean mask of W's shape, optional): quantise a pruned matrix and keep
    it pruned, as SparseGPT's joint sparsification + quantisation does: a pruned weight
    gets the zero code (its weight is exactly 0) and its whole value is compensated
    like any other quantisation error; the scale and zero of a group come from its kept
    weights only."""
    from compbench.prune.sparsegpt import inverse_cholesky

    W = W.clone().float()
    cols = W.shape[1]
    Q.check_group(group_size)
    U = inverse_cholesky(H, W)
    codes = torch.zeros(W.shape, dtype=torch.uint8, device=W.device)
    scales, zeros = [], []
    scale = zero = None
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Err1 = torch.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if col % group_size == 0:
                # as the reference: from W, which holds the earlier blocks' lazy updates
                # but not yet this block's (those live in W1)
                group = W[:, col : col + group_size]
                scale, zero = Q.params(group if keep is None else group * keep[:, col : col + group_size], bits, sym)
                scales.append(scale)
                zeros.append(zero)
            w = W1[:, i]
            c = Q.quant_codes(w.unsqueeze(1), scale, zero, bits)
            if keep is not None:
                c = torch.where(keep[:, col : col + 1], c, zero)
            q = Q.dequant(c, scale, zero).squeeze(1)
            codes[:, col] = c.squeeze(1).to(torch.uint8)
            err = (w - q) / U1[i, i]
            W1[:, i:] -= err.unsqueeze(1) @ U1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    return Q.Codes(codes, torch.cat(scales, 1), torch.cat(zeros, 1), bits, group_size)


def gptq_matrix(W: torch.Tensor, H: torch.Tensor, bits: int, group_size: int, sym: bool = False, blocksize: int = BLOCKSIZE, keep=None):
    """The dequantised weights of :func:`gptq_codes`."""
    return gptq_codes(W, H, bits, group_size, sym, blocksize, keep).dequantise()


def gptq_model(
    model, calib_ids, device, bits: int, group_size: int, sym: bool = False, keep: dict | None = None, on_linear=None
) -> list[float]:
    """GPTQ on every decoder linear, block by block on the quantised model's own inputs;
    the weights are replaced by their dequantised values. ``keep``: name -> mask of a
    pruned model (kept pruned, :func:`gptq_codes`); ``on_linear(name, codes)`` sees every
    linear's codes. Returns each linear's largest absolute weight change."""
    from compbench.calibration import sequential

    err = []

    def on_block(b, linears, stats):
        for name, mod in linears.items():
            W = mod.weight.data
            k = None if keep is None else keep[name].to(W.device)
            codes = gptq_codes(W.float(), stats[name].H, bits, group_size, sym, keep=k)
            new = codes.dequantise()
            err.append(float((new - W.float()).abs().max()))
            W.copy_(new.to(W.dtype))
            if on_linear is not None:
                on_linear(name, codes)

    sequential(model, calib_ids, device, True, on_block)
    return err


@register("gptq", "compress", needs_calibration=True)
def gptq(model, ctx, bits: int = 4, group_size: int = 128, sym: bool = False) -> dict:
    err = gptq_model(model, ctx.calib_ids, ctx.device, bits, group_size, sym)
    return {"bits": bits, "group_size": group_size, "avg_bits": Q.avg_bits(bits, group_size), "max_abs_change": max(err)}

"""SparseGPT (Frantar & Alistarh, 2023), following the reference ``fasterprune``.

H = (2/n) Σ X Xᵀ + λI with λ = 0.01·mean(diag H); inputs that never fire (dead,
diag H = 0) get H_jj = 1 and their weights zeroed; U = upper Cholesky factor of
H⁻¹. Columns are processed in blocks of 128: the mask of a block is chosen once,
over all rows, by saliency w² / U_jj² (Eq. 3, one threshold per block); then for
each column j the pruned weights' error err = (w − q) / U_jj is propagated to
the remaining columns, W[:, j:] −= err · U[j, j:] (the OBS update, Eq. 2), lazily
within the block and once per block to the columns after it. For N:M the N of
every M columns with the lowest saliency are chosen on the *updated* weights.
"""

import torch

from compbench.prune.registry import Pattern, register

BLOCKSIZE = 128
PERCDAMP = 0.01


def inverse_cholesky(H: torch.Tensor, W: torch.Tensor):
    """Damped upper Cholesky factor of H⁻¹; zeroes W's dead columns (in place)."""
    H = H.clone().double()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    idx = torch.arange(H.shape[0], device=H.device)
    H[idx, idx] += PERCDAMP * torch.mean(torch.diag(H))
    L = torch.linalg.cholesky(H)
    Hinv = torch.cholesky_inverse(L)
    return torch.linalg.cholesky(Hinv, upper=True).to(W.dtype)


@register("sparsegpt", needs_calibration=True, needs_hessian=True, changes_values=True)
def sparsegpt(W: torch.Tensor, stats, pattern: Pattern, blocksize: int = BLOCKSIZE):
    W = W.clone().float()
    rows, cols = W.shape
    Hinv = inverse_cholesky(stats.H.to(W.device), W)
    pruned = torch.zeros_like(W, dtype=torch.bool)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        d = torch.diag(Hinv1)
        if pattern.is_nm:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        else:
            sal = W1**2 / d.reshape(1, -1) ** 2
            k = int(sal.numel() * pattern.ratio)
            mask1 = torch.zeros(sal.numel(), dtype=torch.bool, device=sal.device)
            if k:
                mask1[torch.argsort(sal.flatten(), stable=True)[:k]] = True
            mask1 = mask1.view_as(sal)
        for i in range(i2 - i1):
            if pattern.is_nm and i % pattern.m == 0:
                sal = W1[:, i : i + pattern.m] ** 2 / d[i : i + pattern.m].reshape(1, -1) ** 2
                mask1.scatter_(1, i + torch.topk(sal, pattern.n, dim=1, largest=False).indices, True)
            w = W1[:, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err = (w - q) / Hinv1[i, i]
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        pruned[:, i1:i2] = mask1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return ~pruned, W

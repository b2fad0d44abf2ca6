"""MEMIT (Meng et al. 2023, "Mass-Editing Memory in a Transformer"), batch editing
of a band of MLP layers; the composability paper's main editor.

1. Key statistics (Eq. 14's C₀ = λ·E[k kᵀ]): the second moment of the inputs k of
   every band layer's down-projection over calibration text, computed once per
   model and cached as safetensors (``ctx.cache_dir``).
2. Target vectors (Eq. 16): for each edit, z = h + δ, h the residual stream after
   the band's last layer at the edit position, δ = argmin NLL(target_new | prompt,
   h → h + δ) + wd·‖δ‖² (Adam), with ‖δ‖ ≤ clamp·‖h‖. The edit position is the
   LAST PROMPT TOKEN: our prompts end right before the target, whereas MEMIT uses
   the subject's last token with random context prefixes; on the tiny world's
   templated prompts the prompt's end is where the attribute is read out.
3. Spreading (Alg. 1 and Eq. 14): for each band layer l in order, with the keys K
   (down_proj inputs at the edit positions, current model) and the remaining
   residual R = (z − h_current) / (layers left), ΔW_l = R Kᵀ (λ C_l + K Kᵀ)⁻¹.
"""

from __future__ import annotations

from pathlib import Path

import torch

from compbench.compose.interventions.edit_ft import band
from compbench.compose.interventions.registry import register


def _positions(ctx):
    """Edit batch (prompt + target), attention mask, labels and each prompt's last index."""
    from compbench.compose.interventions.edit_ft import edit_batch

    ids, att, labels = edit_batch(ctx)
    first_target = (labels != -100).float().argmax(1)
    return ids, att, labels, first_target - 1


@torch.no_grad()
def key_covariance(model, ids: torch.Tensor, layers: list[int], device, batch_size: int = 8) -> dict[int, torch.Tensor]:
    """E[k kᵀ] of the down-projection inputs of each layer over every calibration token."""
    sums, count = {}, [0]
    hooks = []
    for l in layers:

        def hook(mod, inp, out, l=l):
            k = inp[0].reshape(-1, inp[0].shape[-1]).double()
            sums[l] = sums.get(l, 0) + k.T @ k
            if l == layers[0]:
                count[0] += k.shape[0]

        hooks.append(model.model.layers[l].mlp.down_proj.register_forward_hook(hook))
    try:
        for i in range(0, ids.shape[0], batch_size):
            model(ids[i : i + batch_size].to(device))
    finally:
        for h in hooks:
            h.remove()
    return {l: (sums[l] / count[0]).float() for l in layers}


def cached_covariance(model, ctx, layers: list[int], n_stats: int) -> dict[int, torch.Tensor]:
    """Load the key statistics from ``ctx.cache_dir`` or compute and cache them (safetensors, never pickle)."""
    from compbench.artifacts import load_tensors, save_tensors

    if ctx.calib_ids is None:
        raise ValueError("intervention 'memit' needs calibration data for its key statistics")
    ids = ctx.calib_ids[:n_stats]
    path = Path(ctx.cache_dir) / f"memit-cov-n{ids.shape[0]}x{ids.shape[1]}.safetensors" if ctx.cache_dir else None
    have = load_tensors(path) if path is not None and path.exists() else {}
    missing = [l for l in layers if f"layer{l}" not in have]
    if missing:
        ctx.log(f"memit: computing key statistics of layers {missing} over {tuple(ids.shape)} tokens")
        have.update({f"layer{l}": c.cpu() for l, c in key_covariance(model, ids, missing, ctx.device).items()})
        if path is not None:
            save_tensors(path, have, {"n_samples": str(ids.shape[0]), "seq_len": str(ids.shape[1])})
    return {l: have[f"layer{l}"].to(ctx.device) for l in layers}


def _target_vectors(model, ids, att, labels, pos, last: int, v_steps: int, v_lr: float, wd: float, clamp: float):
    """z = h + δ per edit at the band's last layer (Eq. 16)."""
    from compbench.compose.metrics import target_nll

    rows = torch.arange(ids.shape[0])
    with torch.no_grad():
        h = model(input_ids=ids, attention_mask=att, output_hidden_states=True).hidden_states[last + 1][rows, pos]
    delta = torch.zeros_like(h, requires_grad=True)

    def add_delta(mod, inp, out):
        hs = out[0] if isinstance(out, tuple) else out
        hs = hs.clone()
        hs[rows, pos] = hs[rows, pos] + delta
        return (hs, *out[1:]) if isinstance(out, tuple) else hs

    req = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    handle = model.model.layers[last].register_forward_hook(add_delta)
    opt = torch.optim.Adam([delta], lr=v_lr)
    try:
        for _ in range(v_steps):
            loss = target_nll(model, ids, att, labels) + wd * (delta**2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():  # ‖δ‖ ≤ clamp·‖h‖
                limit = clamp * h.norm(dim=1, keepdim=True)
                delta.mul_(torch.clamp(limit / delta.norm(dim=1, keepdim=True).clamp_min(1e-12), max=1.0))
    finally:
        handle.remove()
        for p, r in req.items():
            p.requires_grad_(r)
    return h + delta.detach(), float(loss.detach())


@register("memit", "edit", needs_calibration=True)
def memit(
    model,
    ctx,
    layers: list[int] | None = None,
    v_steps: int = 25,
    v_lr: float = 0.5,
    v_weight_decay: float = 1e-3,
    clamp_norm: float = 4.0,
    mom2_weight: float = 1000.0,
    n_stats: int = 32,
    seed: int = 0,
) -> dict:
    torch.manual_seed(seed)
    ls = band(model, layers)
    C = cached_covariance(model, ctx, ls, n_stats)
    ids, att, labels, pos = _positions(ctx)
    rows = torch.arange(ids.shape[0])
    model.eval()
    z, v_loss = _target_vectors(model, ids, att, labels, pos, ls[-1], v_steps, v_lr, v_weight_decay, clamp_norm)
    for i, l in enumerate(ls):
        keys = {}
        hook = model.model.layers[l].mlp.down_proj.register_forward_hook(lambda m, inp, out: keys.update(k=inp[0]))
        with torch.no_grad():
            try:
                hs = model(input_ids=ids, attention_mask=att, output_hidden_states=True).hidden_states[ls[-1] + 1][rows, pos]
            finally:
                hook.remove()
            K = keys["k"][rows, pos].T.double()  # (d_ff, n)
            R = ((z - hs) / (len(ls) - i)).T.double()  # (d, n)
            A = mom2_weight * C[l].double() + K @ K.T
            delta_w = torch.linalg.solve(A, K @ R.T).T  # R Kᵀ A⁻¹ (A symmetric)
            W = model.model.layers[l].mlp.down_proj.weight
            W.add_(delta_w.to(W.dtype))
    return {"layers": ls, "v_loss": v_loss, "edits": int(ids.shape[0])}

"""RMU, Representation Misdirection for Unlearning (Li et al. 2024, the WMDP
paper, §5 and Eq. 1–2; reference centerforaisafety/wmdp rmu/unlearn.py, also
vendored in hartvigsen-group/composable-interventions/wmdp), one of the
composability paper's unlearners.

A fixed random unit vector u (seeded, uniform in [0, 1)^d then normalised, as the
reference) scaled by c. With h_ℓ the output of decoder block ℓ (read with a hook
on the block, as the reference's ``forward_with_cache``, so before the final norm
also when ℓ is the last block):
  L_forget = mean over forget tokens ‖h_ℓ(x) − c·u‖² / d        (Eq. 1)
  L_retain = α · mean over retain tokens ‖h_ℓ(x) − h_ℓ^frozen(x)‖² / d   (Eq. 2)
(``F.mse_loss``'s mean over tokens and dimensions, as the reference). What trains
is, in each of ``update_layers`` (reference: ℓ−2, ℓ−1, ℓ), the block parameters
named in ``params`` — default the MLP down-projection weight only, the reference's
``param_ids`` default 6 (index 6 of a LLaMA/Mistral decoder layer's
``parameters()`` is ``mlp.down_proj.weight``; tested against its ``get_params``).

Deviations, each a setting: the reference's c (6.5 for Zephyr-7B, 20 for the
composability paper's Llama-3-8B) is tied to a model's activation norms; here
``steering_coeff`` None sets c = 4 × the mean ‖h_ℓ‖ of forget tokens of the
unchanged model, the same "several times the typical norm" regime. The mean runs
over real tokens only (the reference's also counts padding positions) and batches
are drawn at random (the reference walks the corpora once in order). The optimiser
is torch's AdamW without decay (the reference's ``transformers.AdamW``: eps 1e-6
instead of 1e-8)."""

from __future__ import annotations

import copy
import random

import torch

from compbench.compose.interventions.registry import register
from compbench.compose.interventions.residual import block_output
from compbench.compose.interventions.training import train_params
from compbench.compose.interventions.unlearn_common import batches, params_of

# WMDP's get_params(model, layer_ids=[5, 6, 7], param_ids=[6]): the down-projection.
REFERENCE_PARAMS = ("mlp.down_proj.weight",)


def _hidden(model, ids, att, layer):
    """Block ``layer``'s output, pre-norm at every layer (the reference's hook)."""
    return block_output(model, layer, input_ids=ids, attention_mask=att)


def _masked_mse(h, target, att):
    m = att.unsqueeze(-1).to(h.dtype)
    return (((h - target) ** 2) * m).sum() / (m.sum() * h.shape[-1])


@register("rmu", "unlearn")
def rmu(
    model,
    ctx,
    layer: int | None = None,
    update_layers: list[int] | None = None,
    params: list[str] = REFERENCE_PARAMS,
    steering_coeff: float | None = None,
    alpha: float = 100.0,
    steps: int = 30,
    lr: float = 5e-4,
    batch_size: int = 16,
    seq_len: int = 64,
    seed: int = 0,
) -> dict:
    n = len(model.model.layers)
    layer = n // 2 if layer is None else layer
    if not 0 <= layer < n:
        raise ValueError(f"rmu layer {layer} out of range; allowed: 0..{n - 1}")
    update_layers = update_layers if update_layers is not None else [l for l in (layer - 2, layer - 1, layer) if l >= 0]
    dev, tok = ctx.device, ctx.tokenizer
    torch.manual_seed(seed)
    frozen = copy.deepcopy(model).eval()
    forget = batches(tok, ctx.data.forget_texts, batch_size, seq_len, random.Random(seed))
    retain = batches(tok, ctx.data.retain_texts, batch_size, seq_len, random.Random(seed + 1))
    d = model.config.hidden_size
    u = torch.rand(d, generator=torch.Generator().manual_seed(seed))
    u = (u / u.norm()).to(dev)
    if steering_coeff is None:
        with torch.no_grad():
            ids, att = next(forget)
            h = _hidden(frozen, ids.to(dev), att.to(dev), layer)
            steering_coeff = 4.0 * float(h.norm(dim=-1)[att.bool()].mean())
    target = steering_coeff * u

    def loss_fn():
        f_ids, f_att = (t.to(dev) for t in next(forget))
        r_ids, r_att = (t.to(dev) for t in next(retain))
        lf = _masked_mse(_hidden(model, f_ids, f_att, layer), target, f_att)
        with torch.no_grad():
            r_ref = _hidden(frozen, r_ids, r_att, layer)
        lr_ = _masked_mse(_hidden(model, r_ids, r_att, layer), r_ref, r_att)
        return lf + alpha * lr_, {"forget_loss": lf.detach(), "retain_loss": lr_.detach()}

    info = train_params(model, params_of(model, update_layers, list(params)), steps, lr, loss_fn)
    del frozen
    return {**info, "layer": layer, "update_layers": update_layers, "params": list(params), "steering_coeff": steering_coeff}

"""Knowledge editing by constrained fine-tuning (FT-L; Zhu et al. 2020, as in
EasyEdit's FT used by the composability paper): only the MLP down-projection of
a band of middle layers trains, on the NLL of the new targets given the edit
prompts (teacher forcing, target tokens only), the whole batch of edits at once;
with ``norm_constraint`` every weight stays within ±eps of its original value
(EasyEdit's ``norm_constraint``: clamp after each step)."""

from __future__ import annotations

import torch

from compbench.compose.interventions.registry import register


def middle_band(n_layers: int, width: int | None = None) -> list[int]:
    """The middle ``width`` layers (default: half of them, at least one)."""
    width = width or max(1, n_layers // 2)
    start = (n_layers - width) // 2
    return list(range(start, start + width))


def band(model, layers) -> list[int]:
    n = len(model.model.layers)
    if layers is None:
        return middle_band(n)
    bad = [l for l in layers if not (isinstance(l, int) and 0 <= l < n)]
    if bad or not layers:
        raise ValueError(f"edit layers {list(layers)}: {bad or 'empty'} out of range; allowed: 0..{n - 1}")
    return sorted(set(layers))


def edit_batch(ctx):
    from compbench.compose.metrics import encode_pairs

    e = ctx.data.edits
    ids, att, labels = encode_pairs(ctx.tokenizer, [r.prompt for r in e], [r.target_new for r in e])
    return ids.to(ctx.device), att.to(ctx.device), labels.to(ctx.device)


def train_edit(model, ctx, params: list[torch.nn.Parameter], steps: int, lr: float, after_step=None) -> dict:
    """Adam on the edit loss over ``params`` only (every other parameter frozen)."""
    from compbench.compose.interventions.training import train_params
    from compbench.compose.metrics import target_nll

    ids, att, labels = edit_batch(ctx)

    def loss_fn():
        loss = target_nll(model, ids, att, labels)
        return loss, {"loss": loss.detach()}

    r = train_params(model, params, steps, lr, loss_fn, after_step=after_step)
    return {"loss_before": r["first_loss"], "loss_after_last_step": r.get("loss"), "steps": steps}


@register("ft", "edit")
def ft(
    model, ctx, layers: list[int] | None = None, steps: int = 40, lr: float = 5e-3, norm_constraint: float | None = 5e-3, seed: int = 0
) -> dict:
    torch.manual_seed(seed)
    ls = band(model, layers)
    weights = [model.model.layers[l].mlp.down_proj.weight for l in ls]
    orig = [w.detach().clone() for w in weights]

    def clamp():
        if norm_constraint:
            with torch.no_grad():
                for w, o in zip(weights, orig):
                    w.copy_(torch.clamp(w, o - norm_constraint, o + norm_constraint))

    info = train_edit(model, ctx, weights, steps, lr, clamp)
    return {**info, "layers": ls}

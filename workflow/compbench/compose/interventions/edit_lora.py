"""Knowledge editing with LoRA (EasyEdit's LoRA editor, as in the composability
paper): low-rank adapters ΔW = (alpha / r)·B·A on the MLP down-projection of a
band of layers (``peft``), trained on the edit loss, then merged into the
weights, so the edited model is a plain model of the original architecture."""

from __future__ import annotations

import torch

from compbench.compose.interventions.edit_ft import band, train_edit
from compbench.compose.interventions.registry import register


@register("lora", "edit")
def lora(
    model,
    ctx,
    layers: list[int] | None = None,
    r: int = 8,
    alpha: int = 16,
    steps: int = 40,
    lr: float = 5e-3,
    target: str = "down_proj",
    seed: int = 0,
) -> dict:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    ls = band(model, layers)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=[target], layers_to_transform=ls)
    wrapped = get_peft_model(model, cfg)
    params = [p for n, p in wrapped.named_parameters() if "lora_" in n]
    info = train_edit(wrapped, ctx, params, steps, lr)
    merged = wrapped.merge_and_unload()  # the base modules again, ΔW added in place
    if merged is not model:  # peft unwraps to the same object; guard against a copy
        model.load_state_dict(merged.state_dict())
    return {**info, "layers": ls, "r": r}

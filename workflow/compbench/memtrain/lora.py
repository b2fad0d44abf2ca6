"""LoRA (Hu et al. 2021) through ``peft``: W + (alpha / r) · B A on every decoder linear,
base weights frozen; merged back into the weights after training."""

from __future__ import annotations

from compbench.memtrain.galore import ProjectedAdamW
from compbench.memtrain.registry import VARIANTS, Context, Setup, decoder_linears, plain_groups

ALLOWED = {"rank", "alpha", "dropout"}


@VARIANTS.register("lora")
def build(model, hyper: dict, ctx: Context) -> Setup:
    from peft import LoraConfig, get_peft_model

    bad = set(hyper) - ALLOWED
    if bad:
        raise ValueError(f"unknown LoRA hyper-parameter(s) {sorted(bad)}; allowed: {sorted(ALLOWED)}")
    targets = sorted({n.rsplit(".", 1)[-1] for n in decoder_linears(model)})
    cfg = LoraConfig(
        r=int(hyper.get("rank", 8)),
        lora_alpha=float(hyper.get("alpha", 16)),
        lora_dropout=float(hyper.get("dropout", 0.0)),
        target_modules=targets,
        bias="none",
    )
    pm = get_peft_model(model, cfg)
    opt = ProjectedAdamW(plain_groups(pm.parameters(), ctx.weight_decay), lr=ctx.lr, betas=ctx.betas, eps=ctx.eps)
    return Setup(pm, opt, finalize=lambda m: m.merge_and_unload(), info={"lora_targets": targets})

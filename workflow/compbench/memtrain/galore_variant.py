"""GaLore variant: decoder linears' gradients projected to rank r (see :mod:`.galore`)."""

from __future__ import annotations

from compbench.memtrain.galore import ProjectedAdamW
from compbench.memtrain.registry import VARIANTS, Context, Setup, decoder_linears, plain_groups, set_trainable

ALLOWED = {"rank", "update_proj_gap", "scale"}


def check(hyper: dict, allowed: set, name: str) -> None:
    bad = set(hyper) - allowed
    if bad:
        raise ValueError(f"unknown {name} hyper-parameter(s) {sorted(bad)}; allowed: {sorted(allowed)}")


@VARIANTS.register("galore")
def build(model, hyper: dict, ctx: Context) -> Setup:
    check(hyper, ALLOWED, "galore")
    set_trainable(model, ctx.train_embeddings)
    targets = decoder_linears(model)
    proj = [model.get_submodule(n).weight for n in targets]
    ids = {id(p) for p in proj}
    groups = plain_groups([p for p in model.parameters() if id(p) not in ids], ctx.weight_decay)
    groups.append(
        {
            "params": proj,
            "weight_decay": ctx.weight_decay,
            "rank": int(hyper.get("rank", 128)),
            "update_proj_gap": int(hyper.get("update_proj_gap", 200)),
            "scale": float(hyper.get("scale", 0.25)),
        }
    )
    opt = ProjectedAdamW(groups, lr=ctx.lr, betas=ctx.betas, eps=ctx.eps)
    return Setup(model, opt, info={"targets": len(targets)})

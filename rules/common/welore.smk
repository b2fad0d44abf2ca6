# Helpers of the low-rank line (rules/welore.smk): variant grid, FINAL targets.

def lowrank_cfg():
    return config["lowrank"]


def lowrank_compressed(model):
    c = lowrank_cfg()
    return {f"lowrank-{a}-{r}": f"{RESULTS}/variants/{model}/lowrank-{a}-{r}" for a in c["allocations"] for r in c["ratios"]}


def lowrank_finetuned(model):
    f = lowrank_cfg()["finetune"]
    return {
        f"lowrank-{a}-{r}-ft-{mode}": f"{RESULTS}/variants/{model}/lowrank-{a}-{r}-ft-{mode}"
        for a in f["allocations"] for r in f["ratios"] for mode in f["modes"]
    }


def lowrank_variants(model):
    return {**lowrank_compressed(model), **lowrank_finetuned(model)}


if "lowrank" in config:
    VARIANT_PROVIDERS.append(lowrank_variants)
    FINAL.append(
        lambda: expand(
            [f"{RESULTS}/tables/lowrank-{{model}}.csv", f"{RESULTS}/figures/lowrank-ranks-{{model}}.png",
             f"{RESULTS}/figures/lowrank-{{model}}.png", f"{RESULTS}/figures/lowrank-finetune-{{model}}.png"],
            model=list(config["models"]),
        )
    )

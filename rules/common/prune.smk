# Helpers of the pruning line (rules/prune.smk): grid, variants, allocation files.

def pruning_cfg():
    return config["pruning"]


def calib_name():
    c = pruning_cfg()["calibration"]
    return f"{c['source']}_{c['n_samples']}x{c['seq_len']}_s{c['seed']}"


def epsilon(method, sparsity):
    """AlphaPruning's epsilon for a method at a sparsity (config: a number, or sparsity -> number)."""
    e = pruning_cfg()["epsilon"].get(method, pruning_cfg()["epsilon"]["default"])
    if isinstance(e, dict):
        e = e.get(str(sparsity), e.get("default", pruning_cfg()["epsilon"]["default"]))
    return e


EPS_RULES = ("alpha", "alpha_rev")  # allocation rules with an epsilon


def allocation_file(model, method, allocation, sparsity):
    """Allocations that do not depend on the method are computed once: the
    file of `alpha` carries its epsilon, uniform/OWL files are shared. An
    allocation named with its epsilon (`alpha-eps0.1`, the sweep) uses it."""
    key = f"{allocation}-eps{epsilon(method, sparsity)}" if allocation in EPS_RULES else allocation
    return f"{RESULTS}/allocation/{model}/{key}-{sparsity}.csv"


def sweep_variants(model):
    """AlphaPruning's epsilon sweep and the reversed-direction control
    (config pruning.alpha_sweep): `prune-<method>-<rule>-eps<e>-<sparsity>`."""
    sw = pruning_cfg().get("alpha_sweep") or {}
    out = {}
    for m in sw.get("methods", []):
        for s in sw.get("sparsities", []):
            for rl in ["alpha"] + (["alpha_rev"] if sw.get("reversed") else []):
                for e in sw.get("epsilons", []):
                    name = f"prune-{m}-{rl}-eps{e}-{s}"
                    out[name] = f"{RESULTS}/variants/{model}/{name}"
    return out


def prune_variants(model):
    p = pruning_cfg()
    out = {}
    for m in p["methods"]:
        for a in p["allocations"]:
            for s in p["sparsities"]:
                out[f"prune-{m}-{a}-{s}"] = f"{RESULTS}/variants/{model}/prune-{m}-{a}-{s}"
    out.update(sweep_variants(model))
    for m in p["nm_methods"]:
        for n, mm in p["nm"]:
            out[f"prune-{m}-{n}of{mm}"] = f"{RESULTS}/variants/{model}/prune-{m}-{n}of{mm}"
    return out


if "pruning" in config:
    VARIANT_PROVIDERS.append(prune_variants)
    FINAL.append(
        lambda: expand(
            [f"{RESULTS}/tables/pruning-{{model}}.csv", f"{RESULTS}/figures/pruning-{{model}}.png",
             f"{RESULTS}/figures/allocation-{{model}}.png", f"{RESULTS}/figures/pruning-paper-table-{{model}}.png",
             f"{RESULTS}/figures/alpha-sweep-{{model}}.png"],
            model=list(config["models"]),
        )
    )


PRUNE_WC = dict(sparsity=r"0\.\d+", allocation=r"[a-z_]+(-eps[0-9.]+)?", method=r"[a-z]+")

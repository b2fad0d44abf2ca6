# Helpers of the composability line (rules/compose.smk): the runs of the grid,
# the calibration set, FINAL targets.


def compose_cfg():
    return config["compose"]


def compose_categories():
    """Intervention id -> category (edit / compress / unlearn), from the registry."""
    from compbench.compose.pipeline import resolve

    ivs = compose_cfg()["interventions"]
    return {i: resolve(i, ivs).category for i in ivs}


def compose_pairs():
    """Every pair of ids from different categories, once (config order); each pair
    job runs both orders."""
    cats = compose_categories()
    ids = list(cats)
    pairs = [f"{a}__{b}" for i, a in enumerate(ids) for b in ids[i + 1 :] if cats[a] != cats[b]]
    sw = compose_cfg().get("sweep")
    if sw:
        pairs += [f"{e}__{sw['compressor']}-s{s}" for e in sw["edits"] for s in sw["sparsities"]]
    return list(dict.fromkeys(pairs))


def compose_runs():
    """Every run: the unchanged model, each intervention alone, each pair (both orders)."""
    return ["none", *compose_cfg()["interventions"], *compose_pairs()]


def compose_calib():
    c = compose_cfg()["calibration"]
    return f"{c['source']}_{c['n_samples']}x{c['seq_len']}_s{c['seed']}"


if "compose" in config:
    FINAL.append(
        lambda: expand(
            [f"{RESULTS}/tables/compose-{{model}}.csv", f"{RESULTS}/tables/composability-{{model}}.csv",
             f"{RESULTS}/figures/composability-{{model}}.png", f"{RESULTS}/figures/compose-sparsity-{{model}}.png"],
            model=list(config["models"]),
        )
    )


def compose_run_code(wildcards):
    """Package sources of a run: the shared ones plus the module of each of its
    interventions, so an edit of, say, intervene/rmu.py reruns only the runs with RMU."""
    import sys as _sys
    from compbench.compose.pipeline import sequence_steps

    steps = sequence_steps(wildcards.run, compose_cfg()["interventions"])
    own = {_sys.modules[s.intervention.fn.__module__].__file__ for s in steps}
    return pkg("compose", "intervene", "edit_metrics", "calibration", "spectra", "perplexity", "models", "tokenizer",
               "corpus") + sorted(own)


def compose_memit_entries():
    """The MEMIT entries of the registry: id -> settings (their key statistics are computed once per model)."""
    return {i: s for i, s in canon(compose_cfg()["interventions"]).items() if s["method"] == "memit"}


def compose_memit_input(wildcards):
    from compbench.compose.pipeline import sequence_steps

    steps = sequence_steps(wildcards.run, compose_cfg()["interventions"])
    if any(s.intervention.name == "memit" for s in steps):
        return f"{RESULTS}/compose/{wildcards.model}/memit-stats"
    return []

# Composability line (Composable Interventions, ICLR 2025): the study's data ->
# every intervention alone and every cross-category pair in both orders on the
# same model -> table of metrics -> order-free error and order sensitivity ->
# heatmaps and the edit-vs-compress sparsity curves. Grid: compbench.compose.grid.
from compbench.compose import grid as compose_grid

# A run's code: the shared modules, the interventions' registry, and only the
# intervention modules the run uses, not the list that loads them all (an edit of
# interventions/rmu.py reruns only the runs with RMU).
INTERVENTION_LIST = ["compbench.compose.interventions.methods"]
INTERVENTION_REGISTRY = ["compbench.compose.interventions.registry"]



rule compose_data:
    output:
        f"{RESULTS}/compose/{{model}}/data.json",
    input:
        corpus=lambda wc: corpus_files("train") if config["compose"]["data"]["source"] in ("world", "facts") else [],
        model=lambda wc: model_dir(wc.model) if compose_grid.data_needs_model(config) else [],
        code=code("compose_data"),
    params:
        data=cfg("compose", "data"),
        device=config["device"],
        knowledge=cfg("corpus", "knowledge", default={}),
        sources=cfg("corpus", "sources", default=[]),
        corpus_dir=f"{RESULTS}/corpus",
    log:
        f"{RESULTS}/logs/compose/{{model}}/data.log",
    priority: 1  # the DAG's longest chain (data -> MEMIT stats -> first step -> runs): started early, not left as the tail
    threads: model_threads
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../workflow/scripts/compose_data.py"


rule compose_memit_stats:
    output:
        directory(f"{RESULTS}/compose/{{model}}/memit-stats"),
    input:
        model=lambda wc: model_dir(wc.model),
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{compose_grid.calib_name(config)}.safetensors",
        code=code("compose_memit_stats"),
    params:
        memit=lambda wc: canon(compose_grid.memit_entries(config)),
        device=config["device"],
    log:
        f"{RESULTS}/logs/compose/{{model}}/memit-stats.log",
    benchmark:
        f"{RESULTS}/benchmarks/compose/{{model}}/memit-stats.tsv"
    priority: 1  # the DAG's longest chain (data -> MEMIT stats -> first step -> runs): started early, not left as the tail
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/compose_memit_stats.py"


rule compose_first:
    # One intervention applied to the unchanged model, once per model: every run whose order
    # starts with it (alone, or first of either order of a pair) reads it (the tensors it
    # changed) instead of applying it again; MEMIT on SmolLM2 is ~4 min per application.
    output:
        f"{RESULTS}/compose/{{model}}/first/{{step}}.safetensors",
    input:
        model=lambda wc: model_dir(wc.model),
        data=f"{RESULTS}/compose/{{model}}/data.json",
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{compose_grid.calib_name(config)}.safetensors",
        memit_stats=lambda wc: f"{RESULTS}/compose/{wc.model}/memit-stats" if compose_grid.uses_memit(config, wc.step) else [],
        code=lambda wc: code("compose_first", skip=INTERVENTION_LIST, extra=INTERVENTION_REGISTRY + compose_grid.run_modules(config, wc.step)),
    wildcard_constraints:
        step=compose_grid.STEP_WILDCARD,
    params:
        interventions=lambda wc: canon(compose_grid.run_interventions(config, wc.step)),
        seed=lambda wc: config["compose"]["seed"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/compose/{{model}}/first-{{step}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/compose/{{model}}/first-{{step}}.tsv"
    priority: 1  # the DAG's longest chain (data -> MEMIT stats -> first step -> runs): started early, not left as the tail
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/compose_first.py"


rule compose_run:
    output:
        table=f"{RESULTS}/compose/{{model}}/runs/{{run}}.csv",
        per_item=f"{RESULTS}/compose/{{model}}/items/{{run}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        data=f"{RESULTS}/compose/{{model}}/data.json",
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{compose_grid.calib_name(config)}.safetensors",
        memit_stats=lambda wc: f"{RESULTS}/compose/{wc.model}/memit-stats" if compose_grid.uses_memit(config, wc.run) else [],
        first=lambda wc: expand(f"{RESULTS}/compose/{wc.model}/first/{{step}}.safetensors", step=compose_grid.first_steps(wc.run)),
        corpus=lambda wc: corpus_files("test") if config["compose"]["eval"]["perplexity"] in lines.CORPUS_DATASETS else [],
        code=lambda wc: code("compose_run", skip=INTERVENTION_LIST, extra=INTERVENTION_REGISTRY + compose_grid.run_modules(config, wc.run)),
    wildcard_constraints:
        run=compose_grid.RUN_WILDCARD,
    params:
        interventions=lambda wc: canon(compose_grid.run_interventions(config, wc.run)),
        eval=cfg("compose", "eval"),
        sources=lambda wc: lines.corpus_sources(config, config["compose"]["eval"]["perplexity"]),
        corpus_dir=f"{RESULTS}/corpus",
        spec=model_spec,
        seed=lambda wc: config["compose"]["seed"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/compose/{{model}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/compose/{{model}}/{{run}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/compose_run.py"


rule compose_table:
    output:
        runs=report(f"{RESULTS}/tables/compose-{{model}}.csv", category="Composable interventions",
                    caption="../workflow/report/compose.rst"),
        metrics=report(f"{RESULTS}/tables/composability-{{model}}.csv", category="Composable interventions",
                       caption="../workflow/report/composability.rst"),
    input:
        runs=lambda wc: expand(f"{RESULTS}/compose/{wc.model}/runs/{{run}}.csv", run=compose_grid.runs(config)),
        code=code("compose_table"),
    log:
        f"{RESULTS}/logs/compose/{{model}}/table.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/compose_table.py"


rule figure_compose:
    output:
        heatmap=report(f"{RESULTS}/figures/composability-{{model}}.png", category="Composable interventions",
                       caption="../workflow/report/composability_figure.rst"),
        sweep=report(f"{RESULTS}/figures/compose-sparsity-{{model}}.png", category="Composable interventions",
                     caption="../workflow/report/compose_sparsity.rst"),
    input:
        runs=f"{RESULTS}/tables/compose-{{model}}.csv",
        metrics=f"{RESULTS}/tables/composability-{{model}}.csv",
        code=code("figure_compose"),
    params:
        sweep=cfg("compose", "sweep", default={}),
    log:
        f"{RESULTS}/logs/figures/compose-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_compose.py"


rule compose:
    input:
        lambda wc: lines.targets(config, "compose"),

# Composability line (Composable Interventions, ICLR 2025): the study's data ->
# every intervention alone and every cross-category pair in both orders on the
# same model -> table of metrics -> order-free error and order sensitivity ->
# heatmaps and the edit-vs-compress sparsity curves. Helpers: rules/common/compose.smk.


rule compose_data:
    output:
        f"{RESULTS}/compose/{{model}}/data.json",
    input:
        corpus=lambda wc: corpus_files("train") if compose_cfg()["data"]["source"] == "world" else [],
        code=pkg("compose_data", "knowledge", "intervene", "corpus"),
    params:
        data=cfg("compose", "data"),
        knowledge=cfg("corpus", "knowledge", default={}),
        sources=cfg("corpus", "sources", default=[]),
        corpus_dir=f"{RESULTS}/corpus",
    log:
        f"{RESULTS}/logs/compose/{{model}}/data.log",
    threads: 1
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
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{compose_calib()}.safetensors",
        code=pkg("intervene", "intervene.edit_memit", "intervene.edit_ft", "models"),
    params:
        memit=lambda wc: compose_memit_entries(),
        device=config["device"],
    log:
        f"{RESULTS}/logs/compose/{{model}}/memit-stats.log",
    benchmark:
        f"{RESULTS}/benchmarks/compose/{{model}}/memit-stats.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/compose_memit_stats.py"


rule compose_run:
    output:
        f"{RESULTS}/compose/{{model}}/runs/{{run}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        data=f"{RESULTS}/compose/{{model}}/data.json",
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{compose_calib()}.safetensors",
        memit_stats=compose_memit_input,
        corpus=lambda wc: corpus_files("test") if compose_cfg()["eval"]["perplexity"] == "tiny" else [],
        code=compose_run_code,
    wildcard_constraints:
        run=r"[A-Za-z0-9_.\-]+",
    params:
        interventions=cfg("compose", "interventions"),
        eval=cfg("compose", "eval"),
        sources=cfg("corpus", "sources", default=[]),
        corpus_dir=f"{RESULTS}/corpus",
        spec=model_spec,
        seed=lambda wc: compose_cfg()["seed"],
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
        runs=lambda wc: expand(f"{RESULTS}/compose/{wc.model}/runs/{{run}}.csv", run=compose_runs()),
        code=pkg("compose"),
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
        code=pkg("compose_plots"),
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

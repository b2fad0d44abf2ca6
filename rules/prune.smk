# Layerwise pruning line (AlphaPruning): calibration token sets -> OWL outlier
# ratios -> per-block allocation (uniform / OWL / alpha) -> magnitude / Wanda /
# SparseGPT -> masked variants, evaluated by the spine's perplexity rule.
# Grid: compbench.prune.grid. Allocations: rules/spectra.smk; calibration token
# sets: rules/calibration.smk. `snakemake pruning` makes the line's tables and figures.
from compbench.prune import grid as prune_grid


rule owl_outliers:
    output:
        f"{RESULTS}/allocation/{{model}}/owl-lod.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{prune_grid.calib_name(config)}.safetensors",
        code=code("owl_outliers"),
    params:
        M=lambda wc: config["pruning"]["owl"]["M"],
        dtype=prune_dtype,
        device=config["device"],
    log:
        f"{RESULTS}/logs/allocation/{{model}}/owl-lod.log",
    benchmark:
        f"{RESULTS}/benchmarks/allocation/{{model}}/owl-lod.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/owl_outliers.py"


rule prune:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/prune-{{method}}-{{allocation}}-{{sparsity}}"),
        record=f"{RESULTS}/prune/{{model}}/prune-{{method}}-{{allocation}}-{{sparsity}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        allocation=lambda wc: prune_grid.allocation_file(config, wc.model, wc.method, wc.allocation, wc.sparsity),
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{prune_grid.calib_name(config)}.safetensors",
        code=code("prune"),
    wildcard_constraints:
        **prune_grid.WILDCARDS,
    params:
        nm=None,
        dtype=prune_dtype,
        device=config["device"],
    log:
        f"{RESULTS}/logs/prune/{{model}}/prune-{{method}}-{{allocation}}-{{sparsity}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prune/{{model}}/prune-{{method}}-{{allocation}}-{{sparsity}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/prune.py"


rule prune_nm:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/prune-{{method}}-{{n}}of{{m}}"),
        record=f"{RESULTS}/prune/{{model}}/prune-{{method}}-{{n}}of{{m}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{prune_grid.calib_name(config)}.safetensors",
        code=code("prune"),
    wildcard_constraints:
        n=r"\d+",
        m=r"\d+",
        method=prune_grid.WILDCARDS["method"],
    params:
        nm=lambda wc: [int(wc.n), int(wc.m)],
        dtype=prune_dtype,
        device=config["device"],
    log:
        f"{RESULTS}/logs/prune/{{model}}/prune-{{method}}-{{n}}of{{m}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prune/{{model}}/prune-{{method}}-{{n}}of{{m}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/prune.py"


rule pruning_table:
    output:
        report(f"{RESULTS}/tables/pruning-{{model}}.csv", caption="../workflow/report/pruning_table.rst", category="Pruning"),
    input:
        records=lambda wc: [f"{RESULTS}/prune/{wc.model}/{v}.csv" for v in prune_grid.variants(config, wc.model)],
        perplexity=lambda wc: lines.perplexity_outputs(config, wc.model, ["dense", *prune_grid.variants(config, wc.model)]),
        code=code("pruning_table"),
    log:
        f"{RESULTS}/logs/pruning_table/{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/pruning_table.py"


rule figure_pruning:
    output:
        curve=report(f"{RESULTS}/figures/pruning-{{model}}.png", caption="../workflow/report/pruning.rst", category="Pruning"),
        allocation=report(f"{RESULTS}/figures/allocation-{{model}}.png", caption="../workflow/report/allocation.rst", category="Pruning"),
        paper=report(f"{RESULTS}/figures/pruning-paper-table-{{model}}.png", caption="../workflow/report/pruning_paper.rst", category="Pruning"),
        paper_html=report(f"{RESULTS}/figures/pruning-paper-table-{{model}}.html", caption="../workflow/report/pruning_paper.rst", category="Pruning"),
        sweep=report(f"{RESULTS}/figures/alpha-sweep-{{model}}.png", caption="../workflow/report/alpha_sweep.rst", category="Pruning"),
    input:
        table=f"{RESULTS}/tables/pruning-{{model}}.csv",
        code=code("figure_pruning"),
    params:
        anchors=lambda wc: config["pruning"]["anchors"],
    log:
        f"{RESULTS}/logs/figures/pruning-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_pruning.py"


rule pruning:
    input:
        lambda wc: lines.targets(config, "pruning"),

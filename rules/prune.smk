# Layerwise pruning line (AlphaPruning): calibration token sets -> OWL outlier
# ratios -> per-block allocation (uniform / OWL / alpha) -> magnitude / Wanda /
# SparseGPT -> masked variants, evaluated by the spine's perplexity rule.
# Helpers: rules/common/prune.smk.

rule calibration:
    output:
        f"{RESULTS}/calibration/{{model}}/{{source}}_{{n}}x{{seqlen}}_s{{seed}}.safetensors",
    input:
        model=lambda wc: model_dir(wc.model),
        corpus=lambda wc: corpus_files("train") if wc.source == "tiny" else [],
        code=pkg("calibration", "tokenizer", "corpus"),
    wildcard_constraints:
        n=r"\d+",
        seqlen=r"\d+",
        seed=r"\d+",
    params:
        sources=cfg("corpus", "sources"),
        corpus_dir=f"{RESULTS}/corpus",
    log:
        f"{RESULTS}/logs/calibration/{{model}}/{{source}}_{{n}}x{{seqlen}}_s{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/calibration/{{model}}/{{source}}_{{n}}x{{seqlen}}_s{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
    script:
        "../workflow/scripts/calibration.py"


rule owl_outliers:
    output:
        f"{RESULTS}/allocation/{{model}}/owl-lod.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{calib_name()}.safetensors",
        code=pkg("calibration", "allocate", "spectra", "prune.wanda", "models"),
    params:
        M=lambda wc: pruning_cfg()["owl"]["M"],
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


rule allocate:
    output:
        f"{RESULTS}/allocation/{{model}}/{{allocation}}-{{sparsity}}.csv",
    input:
        blocks=f"{RESULTS}/spectra/{{model}}/blocks.csv",
        lod=lambda wc: f"{RESULTS}/allocation/{wc.model}/owl-lod.csv" if wc.allocation == "owl" else [],
        code=pkg("allocate"),
    wildcard_constraints:
        allocation=r"[a-z_]+(-eps[0-9.]+)?",
        sparsity=PRUNE_WC["sparsity"],
    params:
        rule=lambda wc: wc.allocation.split("-eps")[0],
        hyper=lambda wc: (
            {"epsilon": float(wc.allocation.split("-eps")[1])} if "-eps" in wc.allocation
            else {"M": pruning_cfg()["owl"]["M"], "lam": pruning_cfg()["owl"]["lam"]} if wc.allocation == "owl"
            else {}
        ),
        alpha_rule=lambda wc: pruning_cfg()["alpha_rule"],
        on_overflow=lambda wc: pruning_cfg()["on_overflow"],
    log:
        f"{RESULTS}/logs/allocation/{{model}}/{{allocation}}-{{sparsity}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/allocate.py"


rule prune:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/prune-{{method}}-{{allocation}}-{{sparsity}}"),
        record=f"{RESULTS}/prune/{{model}}/prune-{{method}}-{{allocation}}-{{sparsity}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        allocation=lambda wc: allocation_file(wc.model, wc.method, wc.allocation, wc.sparsity),
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{calib_name()}.safetensors",
        code=pkg("prune", "prune.magnitude", "prune.wanda", "prune.sparsegpt", "calibration", "masked", "spectra", "models", "variants"),
    wildcard_constraints:
        **PRUNE_WC,
    params:
        nm=None,
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
        calibration=lambda wc: f"{RESULTS}/calibration/{wc.model}/{calib_name()}.safetensors",
        code=pkg("prune", "prune.magnitude", "prune.wanda", "prune.sparsegpt", "calibration", "masked", "spectra", "models", "variants"),
    wildcard_constraints:
        n=r"\d+",
        m=r"\d+",
        method=PRUNE_WC["method"],
    params:
        nm=lambda wc: [int(wc.n), int(wc.m)],
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
        records=lambda wc: [f"{RESULTS}/prune/{wc.model}/{v}.csv" for v in prune_variants(wc.model)],
        perplexity=lambda wc: [
            f"{RESULTS}/eval/{wc.model}/{v}/perplexity-{d}.csv"
            for v in ["dense", *prune_variants(wc.model)]
            for d in config["evaluation"]["perplexity"]["datasets"]
        ],
        code=pkg("figures"),
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
        sweep=report(f"{RESULTS}/figures/alpha-sweep-{{model}}.png", caption="../workflow/report/alpha_sweep.rst", category="Pruning"),
    input:
        table=f"{RESULTS}/tables/pruning-{{model}}.csv",
        code=pkg("figures"),
    params:
        anchors=lambda wc: pruning_cfg()["anchors"],
    log:
        f"{RESULTS}/logs/figures/pruning-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_pruning.py"

# Low-rank compression line (WeLore): rank allocation (uniform / WeLore) from the
# singular values the spectra stage computes -> factor-pair variants -> fine-tuning
# (full / LRC-only / LoRA) -> perplexity through the spine -> table and figures.
# Grid: compbench.lowrank.grid.
from compbench.lowrank import grid as lowrank_grid



rule lowrank_compress:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/lowrank-{{allocation}}-{{ratio}}"),
        record=f"{RESULTS}/lowrank/{{model}}/compress-{{allocation}}-{{ratio}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        matrices=f"{RESULTS}/spectra/{{model}}/matrices.csv",
        eigenvalues=f"{RESULTS}/spectra/{{model}}/eigenvalues.safetensors",
        code=code("lowrank_compress"),
    wildcard_constraints:
        **lowrank_grid.WILDCARDS,
    params:
        spec=model_spec,
        min_ratio=lambda wc: config["lowrank"]["min_ratio"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/lowrank/{{model}}/compress-{{allocation}}-{{ratio}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lowrank/{{model}}/compress-{{allocation}}-{{ratio}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/lowrank_compress.py"


rule lowrank_finetune:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/lowrank-{{allocation}}-{{ratio}}-ft-{{mode}}"),
        curve=f"{RESULTS}/lowrank/{{model}}/finetune-{{allocation}}-{{ratio}}-{{mode}}.csv",
    input:
        variant=f"{RESULTS}/variants/{{model}}/lowrank-{{allocation}}-{{ratio}}",
        model=lambda wc: model_dir(wc.model),
        corpus=lambda wc: corpus_files("train") + corpus_files("validation") if config["lowrank"]["finetune"]["data"] == "tiny" else [],
        code=code("lowrank_finetune"),
    wildcard_constraints:
        **lowrank_grid.WILDCARDS,
    params:
        spec=model_spec,
        finetune=lambda wc: canon(lowrank_grid.finetune_settings(config, wc.mode)),
        sources=lambda wc: cfg("corpus", "sources") if config["lowrank"]["finetune"]["data"] == "tiny" else [],
        corpus_dir=f"{RESULTS}/corpus",
        device=config["device"],
    log:
        f"{RESULTS}/logs/lowrank/{{model}}/finetune-{{allocation}}-{{ratio}}-{{mode}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lowrank/{{model}}/finetune-{{allocation}}-{{ratio}}-{{mode}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/lowrank_finetune.py"


rule lowrank_table:
    output:
        table=report(f"{RESULTS}/tables/lowrank-{{model}}.csv", caption="../workflow/report/lowrank_table.rst", category="Low-rank (WeLore)"),
        ranks=f"{RESULTS}/tables/lowrank-ranks-{{model}}.csv",
    input:
        records=lambda wc: [f"{RESULTS}/lowrank/{wc.model}/compress-{v.removeprefix('lowrank-')}.csv" for v in lowrank_grid.compressed(config, wc.model)],
        curves=lambda wc: lowrank_grid.finetune_curves(config, wc.model),
        perplexity=lambda wc: lines.perplexity_outputs(config, wc.model, ["dense", *lowrank_grid.variants(config, wc.model)]),
        code=code("lowrank_table"),
    log:
        f"{RESULTS}/logs/lowrank_table/{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/lowrank_table.py"


rule figure_lowrank:
    output:
        ranks=report(f"{RESULTS}/figures/lowrank-ranks-{{model}}.png", caption="../workflow/report/lowrank_ranks.rst", category="Low-rank (WeLore)"),
        curve=report(f"{RESULTS}/figures/lowrank-{{model}}.png", caption="../workflow/report/lowrank.rst", category="Low-rank (WeLore)"),
        finetune=report(f"{RESULTS}/figures/lowrank-finetune-{{model}}.png", caption="../workflow/report/lowrank_finetune.rst", category="Low-rank (WeLore)"),
    input:
        table=f"{RESULTS}/tables/lowrank-{{model}}.csv",
        ranks=f"{RESULTS}/tables/lowrank-ranks-{{model}}.csv",
        curves=lambda wc: lowrank_grid.finetune_curves(config, wc.model),
        code=code("figure_lowrank"),
    log:
        f"{RESULTS}/logs/figures/lowrank-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_lowrank.py"


rule lowrank:
    input:
        lambda wc: lines.targets(config, "lowrank"),

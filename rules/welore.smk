# Low-rank compression line (WeLore): rank allocation (uniform / WeLore) from the
# singular values the spectra stage computes -> factor-pair variants -> fine-tuning
# (full / LRC-only / LoRA) -> perplexity through the spine -> table and figures.
# Helpers: rules/common/welore.smk.


LOWRANK_WC = dict(ratio=r"0\.\d+", allocation=r"[a-z]+", mode=r"[a-z]+")


rule lowrank_compress:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/lowrank-{{allocation}}-{{ratio}}"),
        record=f"{RESULTS}/lowrank/{{model}}/compress-{{allocation}}-{{ratio}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        matrices=f"{RESULTS}/spectra/{{model}}/matrices.csv",
        eigenvalues=f"{RESULTS}/spectra/{{model}}/eigenvalues.safetensors",
        code=pkg("lowrank", "models", "variants"),
    wildcard_constraints:
        **LOWRANK_WC,
    params:
        spec=model_spec,
        min_ratio=lambda wc: lowrank_cfg()["min_ratio"],
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
        corpus=lambda wc: corpus_files("train") + corpus_files("validation") if lowrank_cfg()["finetune"]["data"] == "tiny" else [],
        code=pkg("lrc_finetune", "lowrank", "pretrain", "models", "variants", "tokenizer", "corpus", "spectra", "provenance"),
    wildcard_constraints:
        **LOWRANK_WC,
    params:
        spec=model_spec,
        finetune=cfg("lowrank", "finetune"),
        sources=cfg("corpus", "sources"),
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
        records=lambda wc: [f"{RESULTS}/lowrank/{wc.model}/compress-{v.removeprefix('lowrank-')}.csv" for v in lowrank_compressed(wc.model)],
        curves=lambda wc: [
            f"{RESULTS}/lowrank/{wc.model}/finetune-{a}-{r}-{mode}.csv"
            for a in lowrank_cfg()["finetune"]["allocations"] for r in lowrank_cfg()["finetune"]["ratios"]
            for mode in lowrank_cfg()["finetune"]["modes"]
        ],
        perplexity=lambda wc: [
            f"{RESULTS}/eval/{wc.model}/{v}/perplexity-{d}.csv"
            for v in ["dense", *lowrank_variants(wc.model)]
            for d in config["evaluation"]["perplexity"]["datasets"]
        ],
        code=pkg(),
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
        curves=lambda wc: [
            f"{RESULTS}/lowrank/{wc.model}/finetune-{a}-{r}-{mode}.csv"
            for a in lowrank_cfg()["finetune"]["allocations"] for r in lowrank_cfg()["finetune"]["ratios"]
            for mode in lowrank_cfg()["finetune"]["modes"]
        ],
        code=pkg("figures", "lowrank_plots"),
    log:
        f"{RESULTS}/logs/figures/lowrank-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_lowrank.py"

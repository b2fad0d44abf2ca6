# Memory-efficient training line (Q-GaLore): every training variant (AdamW, LoRA,
# GaLore, Q-GaLore and its ablations) on the same recipe, in two regimes:
# fine-tuning each model of `memtrain.finetune.models` on held-out text, and
# pre-training LLaMA configs of `memtrain.pretrain.sizes` from scratch. Measured:
# loss curves, test perplexity, tokens/s, SVD counts, exact bytes by category, peak memory.
# Grid: compbench.memtrain.grid.
from compbench.memtrain import grid as memtrain_grid




rule memtrain_finetune:
    output:
        variant=directory(f"{RESULTS}/variants/{{base}}/train-{{tvariant}}"),
        curve=f"{RESULTS}/memtrain/finetune/{{base}}/{{tvariant}}/curve.csv",
        summary=f"{RESULTS}/memtrain/finetune/{{base}}/{{tvariant}}/summary.csv",
        refresh=f"{RESULTS}/memtrain/finetune/{{base}}/{{tvariant}}/refresh.csv",
        windows=f"{RESULTS}/memtrain/finetune/{{base}}/{{tvariant}}/windows.csv",
    input:
        model=lambda wc: model_dir(wc.base),
        corpus=lambda wc: corpus_files("validation") + corpus_files("test") if config["memtrain"]["finetune"]["data"] == "tiny" else [],
        code=code("memtrain"),
    wildcard_constraints:
        base=alternation(memtrain_grid.finetune_models(config)),
        **memtrain_grid.WILDCARDS,
    params:
        memtrain=lambda wc: canon(memtrain_grid.job_settings(config, "finetune", wc.base, wc.tvariant)),
        regime="finetune",
        spec=lambda wc: cfg("models", wc.base),
        evaluation=canon(lines.evaluation_settings(config)),
        sources=lambda wc: cfg("corpus", "sources") if config["memtrain"]["finetune"]["data"] == "tiny" else [],
        corpus_dir=f"{RESULTS}/corpus",
        device=config["device"],
    log:
        f"{RESULTS}/logs/memtrain/finetune/{{base}}/{{tvariant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/memtrain/finetune/{{base}}/{{tvariant}}.tsv"
    threads: lambda wc: config["resources"][config["models"][wc.base]["size"]]["threads"]
    resources:
        mem_mb=lambda wc, attempt: config["resources"][config["models"][wc.base]["size"]]["mem_mb"] * attempt,
        runtime=lambda wc, attempt: config["resources"][config["models"][wc.base]["size"]]["runtime"] * attempt,
        gpu=lambda wc: config["resources"][config["models"][wc.base]["size"]]["gpu"],
    script:
        "../workflow/scripts/memtrain.py"


rule memtrain_pretrain:
    output:
        curve=f"{RESULTS}/memtrain/pretrain/{{base}}/{{tvariant}}/curve.csv",
        summary=f"{RESULTS}/memtrain/pretrain/{{base}}/{{tvariant}}/summary.csv",
        refresh=f"{RESULTS}/memtrain/pretrain/{{base}}/{{tvariant}}/refresh.csv",
        windows=f"{RESULTS}/memtrain/pretrain/{{base}}/{{tvariant}}/windows.csv",
    input:
        tokenizer=lambda wc: f"{RESULTS}/tokenizer" if config["memtrain"]["pretrain"]["tokenizer"] == "tiny" else [],
        corpus=lambda wc: corpus_files("train") + corpus_files("validation") + corpus_files("test") if config["memtrain"]["pretrain"]["data"] == "tiny" else [],
        code=code("memtrain"),
    wildcard_constraints:
        base=alternation(memtrain_grid.pretrain_sizes(config)),
        **memtrain_grid.WILDCARDS,
    params:
        memtrain=lambda wc: canon(memtrain_grid.job_settings(config, "pretrain", wc.base, wc.tvariant)),
        regime="pretrain",
        spec=None,
        evaluation=canon(lines.evaluation_settings(config)),
        sources=lambda wc: cfg("corpus", "sources") if config["memtrain"]["pretrain"]["data"] == "tiny" else [],
        corpus_dir=f"{RESULTS}/corpus",
        device=config["device"],
    log:
        f"{RESULTS}/logs/memtrain/pretrain/{{base}}/{{tvariant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/memtrain/pretrain/{{base}}/{{tvariant}}.tsv"
    threads: lambda wc: config["resources"][config["memtrain"]["pretrain"]["sizes"][wc.base]["size"]]["threads"]
    resources:
        mem_mb=lambda wc, attempt: config["resources"][config["memtrain"]["pretrain"]["sizes"][wc.base]["size"]]["mem_mb"] * attempt,
        runtime=lambda wc, attempt: config["resources"][config["memtrain"]["pretrain"]["sizes"][wc.base]["size"]]["runtime"] * attempt,
        gpu=lambda wc: config["resources"][config["memtrain"]["pretrain"]["sizes"][wc.base]["size"]]["gpu"],
    script:
        "../workflow/scripts/memtrain.py"


rule memtrain_table:
    output:
        table=report(f"{RESULTS}/tables/memtrain.csv", caption="../workflow/report/memtrain_table.rst", category="Memory-efficient training"),
        curves=f"{RESULTS}/tables/memtrain-curves.csv",
        refresh=f"{RESULTS}/tables/memtrain-refresh.csv",
    input:
        summaries=lambda wc: [f"{memtrain_grid.run_dir(*r)}/summary.csv" for r in memtrain_grid.runs(config)],
        curves=lambda wc: [f"{memtrain_grid.run_dir(*r)}/curve.csv" for r in memtrain_grid.runs(config)],
        refresh=lambda wc: [f"{memtrain_grid.run_dir(*r)}/refresh.csv" for r in memtrain_grid.runs(config)],
        perplexity=lambda wc: [
            f for m in memtrain_grid.finetune_models(config)
            for f in lines.perplexity_outputs(config, m, ["dense", *memtrain_grid.variants(config, m)])
        ],
        code=code("memtrain_table"),
    log:
        f"{RESULTS}/logs/memtrain/table.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/memtrain_table.py"


rule figure_memtrain:
    output:
        memory=report(f"{RESULTS}/figures/memtrain-memory.png", caption="../workflow/report/memtrain_memory.rst", category="Memory-efficient training"),
        curves=report(f"{RESULTS}/figures/memtrain-curves.png", caption="../workflow/report/memtrain_curves.rst", category="Memory-efficient training"),
        svd=report(f"{RESULTS}/figures/memtrain-svd.png", caption="../workflow/report/memtrain_svd.rst", category="Memory-efficient training"),
    input:
        table=f"{RESULTS}/tables/memtrain.csv",
        curves=f"{RESULTS}/tables/memtrain-curves.csv",
        refresh=f"{RESULTS}/tables/memtrain-refresh.csv",
        code=code("figure_memtrain"),
    log:
        f"{RESULTS}/logs/figures/memtrain.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_memtrain.py"


rule memtrain:
    input:
        lambda wc: lines.targets(config, "memtrain"),

# Evaluation: perplexity of every variant of every model on every data set.


rule perplexity:
    # One job per batch of variants (compbench.lines.perplexity_batches: the dense model,
    # and each line's variants); a variant whose inputs, settings and code did not change
    # is read from the result cache (results/cache/perplexity) instead of recomputed.
    # windows: each variant's per-window NLL sums and token counts (the verdicts' bootstrap).
    output:
        table=f"{RESULTS}/eval/{{model}}/perplexity-{{batch}}-{{dataset}}.csv",
        windows=f"{RESULTS}/eval/{{model}}/windows-{{batch}}-{{dataset}}.csv",
    input:
        variants=lambda wc: list(lines.perplexity_batch(config, wc.model, wc.batch).values()),
        corpus=lambda wc: corpus_files("test") if wc.dataset in lines.CORPUS_DATASETS else [],
        code=batch_code("perplexity"),
    params:
        variants=lambda wc: lines.perplexity_batch(config, wc.model, wc.batch),
        spec=model_spec,
        evaluation=lambda wc: canon(lines.evaluation_settings(config, wc.dataset)),
        sources=lambda wc: lines.corpus_sources(config, wc.dataset),
        corpus_dir=f"{RESULTS}/corpus",
        cache=f"{RESULTS}/cache/perplexity",
        device=config["device"],
    wildcard_constraints:
        batch=r"[A-Za-z0-9_]+(-\d+)?",
        dataset=alternation(config["evaluation"]["perplexity"]["datasets"]),
    log:
        f"{RESULTS}/logs/perplexity/{{model}}/{{batch}}-{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/perplexity/{{model}}/{{batch}}-{{dataset}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/perplexity.py"


rule perplexity_table:
    output:
        report(
            f"{RESULTS}/tables/perplexity.csv",
            caption="../workflow/report/perplexity_table.rst",
            category="Evaluation",
        ),
    input:
        tables=lambda wc: lines.perplexity_outputs(config),
        code=code("concat_tables"),
    log:
        f"{RESULTS}/logs/perplexity_table.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/concat_tables.py"

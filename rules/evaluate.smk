# Evaluation: perplexity of every variant of every model on every data set.


rule perplexity:
    output:
        f"{RESULTS}/eval/{{model}}/{{variant}}/perplexity-{{dataset}}.csv",
    input:
        variant=variant_input,
        corpus=lambda wc: corpus_files("test") if wc.dataset in lines.CORPUS_DATASETS else [],
        code=variant_code("perplexity"),
    params:
        spec=model_spec,
        evaluation=lambda wc: canon(lines.evaluation_settings(config, wc.dataset)),
        sources=lambda wc: lines.corpus_sources(config, wc.dataset),
        corpus_dir=f"{RESULTS}/corpus",
        device=config["device"],
    log:
        f"{RESULTS}/logs/perplexity/{{model}}/{{variant}}-{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/perplexity/{{model}}/{{variant}}-{{dataset}}.tsv"
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

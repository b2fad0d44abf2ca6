# Figures for the report (snakemake --report results/report.html).


rule figure_pretrain:
    output:
        report(
            f"{RESULTS}/figures/pretrain-{{model}}.png",
            caption="../workflow/report/pretrain.rst",
            category="Pretraining",
        ),
    input:
        curve=f"{RESULTS}/pretrain/{{model}}/curve.csv",
        code=code("figure_pretrain"),
    log:
        f"{RESULTS}/logs/figures/pretrain-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_pretrain.py"


rule figure_perplexity:
    output:
        report(
            f"{RESULTS}/figures/perplexity.png",
            caption="../workflow/report/perplexity.rst",
            category="Evaluation",
        ),
    input:
        table=f"{RESULTS}/tables/perplexity.csv",
        code=code("figure_perplexity"),
    log:
        f"{RESULTS}/logs/figures/perplexity.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_perplexity.py"

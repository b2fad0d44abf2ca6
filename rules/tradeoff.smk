# One view across the lines (issue 17): every compressed variant of a model (pruned, N:M,
# low-rank, quantised, pruned then quantised) on one plane, stored bytes of the decoder
# linears (compbench/tradeoff/storage.py) vs the spine's perplexity and the lm-eval
# zero-shot accuracy, with its Pareto front. Grid: compbench.tradeoff.grid. `snakemake tradeoff`.
from compbench.tradeoff import grid as tradeoff_grid


rule tradeoff_table:
    output:
        report(f"{RESULTS}/tables/tradeoff-{{model}}.csv", caption="../workflow/report/tradeoff_table.rst", category="Trade-off"),
    input:
        variants=lambda wc: [path for _, path in tradeoff_grid.plane(config, wc.model).values()],
        matrices=f"{RESULTS}/spectra/{{model}}/matrices.csv",
        perplexity=lambda wc: lines.perplexity_outputs(config, wc.model, list(tradeoff_grid.plane(config, wc.model))),
        zeroshot=lambda wc: tradeoff_grid.zeroshot_outputs(config, wc.model),
        code=code("tradeoff_table"),
    params:
        plane=lambda wc: canon({v: list(lp) for v, lp in tradeoff_grid.plane(config, wc.model).items()}),
        dataset=lambda wc: tradeoff_grid.dataset(config),
    log:
        f"{RESULTS}/logs/tradeoff/{{model}}-table.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/tradeoff_table.py"


rule figure_tradeoff:
    output:
        report(f"{RESULTS}/figures/tradeoff-{{model}}.png", caption="../workflow/report/tradeoff.rst", category="Trade-off"),
    input:
        table=f"{RESULTS}/tables/tradeoff-{{model}}.csv",
        code=code("figure_tradeoff"),
    params:
        dataset=lambda wc: tradeoff_grid.dataset(config),
    log:
        f"{RESULTS}/logs/tradeoff/{{model}}-figure.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_tradeoff.py"


rule tradeoff:
    input:
        lambda wc: lines.targets(config, "tradeoff"),

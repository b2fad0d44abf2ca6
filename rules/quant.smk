# Weight-only quantisation line: round-to-nearest, GPTQ and AWQ at <bits> bits in groups of
# <group> input columns (the composability line's implementations), stored as integer codes
# plus float16 scales (compbench/quant/variant.py), of the dense model and of pruned variants
# (pruning, then quantisation); evaluated by the spine's perplexity rule. Grid:
# compbench.quant.grid; calibration token sets: rules/calibration.smk. `snakemake quant`.
from compbench.quant import grid as quant_grid


rule quantize:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/quant-{{method}}-w{{bits}}g{{group}}"),
        record=f"{RESULTS}/quant/{{model}}/quant-{{method}}-w{{bits}}g{{group}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        calibration=lambda wc: quant_grid.calibration_file(config, wc.model),
        code=code("quantize"),
    wildcard_constraints:
        **quant_grid.WILDCARDS,
    params:
        calibration=lambda wc: canon(quant_grid.calibration(config)),
        device=config["device"],
    log:
        f"{RESULTS}/logs/quant/{{model}}/quant-{{method}}-w{{bits}}g{{group}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/quant/{{model}}/quant-{{method}}-w{{bits}}g{{group}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/quantize.py"


rule quantize_pruned:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/quant-{{method}}-w{{bits}}g{{group}}-on-{{pruned}}"),
        record=f"{RESULTS}/quant/{{model}}/quant-{{method}}-w{{bits}}g{{group}}-on-{{pruned}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        pruned=f"{RESULTS}/variants/{{model}}/{{pruned}}",
        calibration=lambda wc: quant_grid.calibration_file(config, wc.model),
        code=code("quantize"),
    wildcard_constraints:
        pruned=alternation(quant_grid.composition_bases(config) if "quant" in config else []),
        **quant_grid.WILDCARDS,
    params:
        calibration=lambda wc: canon(quant_grid.calibration(config)),
        device=config["device"],
    log:
        f"{RESULTS}/logs/quant/{{model}}/quant-{{method}}-w{{bits}}g{{group}}-on-{{pruned}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/quant/{{model}}/quant-{{method}}-w{{bits}}g{{group}}-on-{{pruned}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/quantize.py"


rule quant_table:
    output:
        report(f"{RESULTS}/tables/quant-{{model}}.csv", caption="../workflow/report/quant_table.rst", category="Quantisation"),
    input:
        records=lambda wc: quant_grid.records(config, wc.model),
        variants=lambda wc: [model_dir(wc.model), *quant_grid.variants(config, wc.model).values()],
        matrices=f"{RESULTS}/spectra/{{model}}/matrices.csv",
        perplexity=lambda wc: lines.perplexity_outputs(config, wc.model, ["dense", *quant_grid.variants(config, wc.model)]),
        code=code("quant_table"),
    params:
        variants=lambda wc: ["dense", *quant_grid.variants(config, wc.model)],
    log:
        f"{RESULTS}/logs/quant_table/{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/quant_table.py"


rule quant:
    input:
        lambda wc: lines.targets(config, "quant"),

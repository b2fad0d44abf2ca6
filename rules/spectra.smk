# Spectra: eigenvalues of every decoder linear and their power-law (HT-SR) alpha
# under each xmin rule (rule esd); per-block mean alpha feeds AlphaPruning's
# allocation (rule allocate: uniform / OWL / alpha / alpha_rev sparsity per block,
# read by the pruning line). `snakemake spectra` makes the line's figures.
from compbench.prune import grid as prune_grid


rule esd:
    output:
        matrices=f"{RESULTS}/spectra/{{model}}/matrices.csv",
        eigenvalues=f"{RESULTS}/spectra/{{model}}/eigenvalues.safetensors",
        blocks=f"{RESULTS}/spectra/{{model}}/blocks.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        code=code("spectra"),
    wildcard_constraints:
        model=alternation(list(config["models"])),
    params:
        spec=model_spec,
        spectra=cfg("spectra"),
        device=config["device"],
    log:
        f"{RESULTS}/logs/spectra/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/spectra/{{model}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/spectra.py"


rule figure_spectra:
    output:
        alpha=report(
            f"{RESULTS}/figures/spectra-alpha-{{model}}.png",
            caption="../workflow/report/spectra_alpha.rst",
            category="Weight spectra",
        ),
        esd=report(
            f"{RESULTS}/figures/spectra-esd-{{model}}.png",
            caption="../workflow/report/spectra_esd.rst",
            category="Weight spectra",
        ),
    input:
        matrices=f"{RESULTS}/spectra/{{model}}/matrices.csv",
        blocks=f"{RESULTS}/spectra/{{model}}/blocks.csv",
        eigenvalues=f"{RESULTS}/spectra/{{model}}/eigenvalues.safetensors",
        code=code("figure_spectra"),
    wildcard_constraints:
        model=alternation(list(config["models"])),
    params:
        spectra=cfg("spectra"),
    log:
        f"{RESULTS}/logs/figures/spectra-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_spectra.py"


rule allocate:
    output:
        f"{RESULTS}/allocation/{{model}}/{{allocation}}-{{sparsity}}.csv",
    input:
        blocks=f"{RESULTS}/spectra/{{model}}/blocks.csv",
        lod=lambda wc: f"{RESULTS}/allocation/{wc.model}/owl-lod.csv" if wc.allocation == "owl" else [],
        code=code("allocate"),
    wildcard_constraints:
        allocation=r"[a-z_]+(-eps[0-9.]+)?",
        sparsity=prune_grid.WILDCARDS["sparsity"],
    params:
        rule=lambda wc: wc.allocation.split("-eps")[0],
        hyper=lambda wc: prune_grid.allocation_hyper(config, wc.allocation),
        alpha_rule=lambda wc: config["pruning"]["alpha_rule"],
        on_overflow=lambda wc: config["pruning"]["on_overflow"],
    log:
        f"{RESULTS}/logs/allocation/{{model}}/{{allocation}}-{{sparsity}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/allocate.py"


rule spectra:
    input:
        lambda wc: lines.targets(config, "spectra"),

# Spectra: eigenvalues of every decoder linear and their power-law (HT-SR) alpha
# under each xmin rule; per-block mean alpha feeds AlphaPruning's allocation.


rule spectra:
    output:
        matrices=f"{RESULTS}/spectra/{{model}}/matrices.csv",
        eigenvalues=f"{RESULTS}/spectra/{{model}}/eigenvalues.safetensors",
        blocks=f"{RESULTS}/spectra/{{model}}/blocks.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        code=pkg("spectra", "models"),
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
        code=pkg("figures", "spectra", "spectra_plots"),
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


FINAL.append(
    lambda: expand(
        [f"{RESULTS}/figures/spectra-alpha-{{model}}.png", f"{RESULTS}/figures/spectra-esd-{{model}}.png"],
        model=list(config["models"]),
    )
)

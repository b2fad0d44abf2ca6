# Calibration-data study (Bandari et al., EMNLP 2024) and zero-shot evaluation
# with lm-eval: calibration sets (source x format, rule `calibration` in
# prune.smk) -> uniformly pruned variants (Wanda / SparseGPT) -> lm-eval (+ the
# spine's perplexity) -> study table, paper-shaped table, heatmap.
# Helpers are package functions (compbench.calibration_study.study), so this file holds rules only.
from compbench.calibration_study import study as cstudy

STUDY_VARIANTS = lambda model: cstudy.variant_dirs(config["calibration_study"], RESULTS, model)
LMEVAL_OUTPUTS = lambda model: [f"{RESULTS}/eval/{model}/{v}/lm_eval.csv" for v in ["dense", *STUDY_VARIANTS(model)]]
GENERATED_TASKS = lambda: cstudy.generated_tasks(config["calibration_study"])


if "calibration_study" in config:
    cstudy.validate(config["calibration_study"])
    VARIANT_PROVIDERS.append(STUDY_VARIANTS)
    FINAL.append(
        lambda: expand(
            [f"{RESULTS}/tables/calibration-{{model}}.csv", f"{RESULTS}/tables/calibration-paper-{{model}}.csv",
             f"{RESULTS}/figures/calibration-heatmap-{{model}}.png"],
            model=list(config["models"]),
        ) + [f"{RESULTS}/tables/zeroshot.csv"]
    )


rule lmeval_tasks:
    output:
        directory(f"{RESULTS}/lm_eval/tasks"),
    input:
        code=pkg("tasks", "zeroshot"),
    params:
        tasks=lambda wc: GENERATED_TASKS(),
        held_out=cfg("corpus", "tasks", default={}),
    log:
        f"{RESULTS}/logs/lm_eval/tasks.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/lmeval_tasks.py"


rule prune_calibration:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/calib-{{calib}}-{{method}}-{{sparsity}}"),
        record=f"{RESULTS}/calibration_study/{{model}}/calib-{{calib}}-{{method}}-{{sparsity}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        calibration=f"{RESULTS}/calibration/{{model}}/{{calib}}.safetensors",
        code=pkg("prune", "prune.magnitude", "prune.wanda", "prune.sparsegpt", "calibration", "masked", "spectra", "models", "variants"),
    wildcard_constraints:
        calib=r"[a-z0-9_]+?(-[a-z0-9]+)?_\d+x\d+_s\d+",
        method=r"[a-z]+",
        sparsity=r"0\.\d+",
    params:
        device=config["device"],
    log:
        f"{RESULTS}/logs/calibration_study/{{model}}/calib-{{calib}}-{{method}}-{{sparsity}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/calibration_study/{{model}}/calib-{{calib}}-{{method}}-{{sparsity}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/prune_calibration.py"


rule lm_eval:
    output:
        f"{RESULTS}/eval/{{model}}/{{variant}}/lm_eval.csv",
    input:
        variant=variant_input,
        tasks=lambda wc: [f"{RESULTS}/lm_eval/tasks"] if GENERATED_TASKS() else [],
        code=pkg("zeroshot", "tasks", "variants", "masked", "models", "tokenizer"),
    params:
        spec=model_spec,
        lm_eval=cfg("calibration_study", "lm_eval"),
        hf_home=f"{RESULTS}/hf_home",
        device=config["device"],
    log:
        f"{RESULTS}/logs/lm_eval/{{model}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lm_eval/{{model}}/{{variant}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/lm_eval.py"


rule zeroshot_table:
    output:
        report(f"{RESULTS}/tables/zeroshot.csv", caption="../workflow/report/zeroshot_table.rst", category="Calibration data"),
    input:
        lambda wc: [f for m in config["models"] for f in LMEVAL_OUTPUTS(m)],
    log:
        f"{RESULTS}/logs/zeroshot_table.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/concat_tables.py"


rule calibration_table:
    output:
        tidy=report(f"{RESULTS}/tables/calibration-{{model}}.csv", caption="../workflow/report/calibration_table.rst", category="Calibration data"),
        paper=report(f"{RESULTS}/tables/calibration-paper-{{model}}.csv", caption="../workflow/report/calibration_paper.rst", category="Calibration data"),
    input:
        records=lambda wc: [f"{RESULTS}/calibration_study/{wc.model}/{v}.csv" for v in STUDY_VARIANTS(wc.model)],
        zeroshot=lambda wc: LMEVAL_OUTPUTS(wc.model),
        perplexity=lambda wc: [
            f"{RESULTS}/eval/{wc.model}/{v}/perplexity-{d}.csv"
            for v in ["dense", *STUDY_VARIANTS(wc.model)]
            for d in config["evaluation"]["perplexity"]["datasets"]
        ],
        code=pkg("calibration_study", "calibration_catalogue"),
    log:
        f"{RESULTS}/logs/calibration_table/{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/calibration_table.py"


rule figure_calibration:
    output:
        report(f"{RESULTS}/figures/calibration-heatmap-{{model}}.png", caption="../workflow/report/calibration_heatmap.rst", category="Calibration data"),
    input:
        table=f"{RESULTS}/tables/calibration-{{model}}.csv",
        code=pkg("calibration_study", "calibration_catalogue"),
    log:
        f"{RESULTS}/logs/figures/calibration-heatmap-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_calibration.py"

# Calibration-data study (Bandari et al., EMNLP 2024) and zero-shot evaluation
# with lm-eval: calibration sets (source x format, rule `calibration` in
# calibration.smk) -> uniformly pruned variants (Wanda / SparseGPT) -> lm-eval (+ the
# spine's perplexity) -> study table, paper-shaped table, heatmap.
# Grid: compbench.calibration_study.grid.
from compbench.calibration_study import grid as cstudy_grid


rule lm_eval_tasks:
    output:
        directory(f"{RESULTS}/lm_eval/tasks"),
    input:
        code=code("lm_eval_tasks"),
    params:
        tasks=lambda wc: cstudy_grid.generated_tasks(config["calibration_study"]),
        held_out=cfg("corpus", "tasks", default={}),
    log:
        f"{RESULTS}/logs/lm_eval/tasks.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/lm_eval_tasks.py"


rule prune_calibration:
    output:
        variant=directory(f"{RESULTS}/variants/{{model}}/calib-{{calib}}-{{method}}-{{sparsity}}"),
        record=f"{RESULTS}/calibration_study/{{model}}/calib-{{calib}}-{{method}}-{{sparsity}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        calibration=f"{RESULTS}/calibration/{{model}}/{{calib}}.safetensors",
        code=code("prune_calibration"),
    wildcard_constraints:
        calib=r"[a-z0-9_]+?(-[a-z0-9]+)?_\d+x\d+_s\d+",
        method=r"[a-z]+",
        sparsity=r"0\.\d+",
    params:
        dtype=prune_dtype,
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
    # One job per batch of variants (compbench.lines.lm_eval_batches: the dense model, and
    # each line's variants that some line evaluates zero-shot); a variant whose inputs,
    # settings and code did not change is read from the result cache (results/cache/lm_eval).
    output:
        table=f"{RESULTS}/eval/{{model}}/lm_eval-{{batch}}.csv",
        per_item=f"{RESULTS}/eval/{{model}}/lm_eval_items-{{batch}}.csv",
    input:
        variants=lambda wc: list(lines.lm_eval_batch(config, wc.model, wc.batch).values()),
        tasks=lambda wc: [f"{RESULTS}/lm_eval/tasks"] if cstudy_grid.generated_tasks(config["calibration_study"]) else [],
        code=batch_code("lm_eval"),
    params:
        variants=lambda wc: lines.lm_eval_batch(config, wc.model, wc.batch),
        spec=model_spec,
        lm_eval=lambda wc: canon({k: v for k, v in config["calibration_study"]["lm_eval"].items() if k != "variants_per_job"}),
        hf_home=f"{RESULTS}/hf_home",
        cache=f"{RESULTS}/cache/lm_eval",
        device=config["device"],
    wildcard_constraints:
        batch=r"[A-Za-z0-9_]+(-\d+)?",
    log:
        f"{RESULTS}/logs/lm_eval/{{model}}/{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lm_eval/{{model}}/{{batch}}.tsv"
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
        tables=lambda wc: [f for m in config["models"] for f in cstudy_grid.lm_eval_outputs(config, m)],
        code=code("concat_tables"),
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
        records=lambda wc: [f"{RESULTS}/calibration_study/{wc.model}/{v}.csv" for v in cstudy_grid.variants(config, wc.model)],
        zeroshot=lambda wc: cstudy_grid.lm_eval_outputs(config, wc.model),
        perplexity=lambda wc: lines.perplexity_outputs(config, wc.model, ["dense", *cstudy_grid.variants(config, wc.model)]),
        code=code("calibration_table"),
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
        code=code("figure_calibration"),
    log:
        f"{RESULTS}/logs/figures/calibration-heatmap-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_calibration.py"


rule calibration_study:
    input:
        lambda wc: lines.targets(config, "calibration_study"),

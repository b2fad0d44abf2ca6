# Pareto-set learning by MoE model fusion: tasks -> per-task fine-tuning (task
# vectors) -> router training on Dirichlet preference rays -> every method's
# models on every task -> fronts + hypervolume. Config section: vision.fusion
# (a historical name; the fused models are language models). Grid: compbench.fusion.grid.
from compbench.fusion import grid as fusion_grid

FUSION_DIR = fusion_grid.FUSION_DIR

rule fusion_tasks:
    output:
        f"{FUSION_DIR}/tasks/{{task}}.json",
    input:
        code=code("fusion_tasks"),
    wildcard_constraints:
        task=r"[A-Za-z0-9_.-]+",
    params:
        spec=lambda wc: canon(fusion_grid.task_spec(config, wc.task)),
        n_train=lambda wc: config["vision"]["fusion"]["n_train"],
        n_test=lambda wc: config["vision"]["fusion"]["n_test"],
        seed=lambda wc: config["vision"]["fusion"]["data_seed"],
    log:
        f"{RESULTS}/logs/vision/fusion-task-{{task}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow/scripts/fusion_tasks.py"


rule fusion_finetune:
    output:
        tau=f"{FUSION_DIR}/{{model}}/s{{seed}}/tau-{{task}}.safetensors",
        record=f"{FUSION_DIR}/{{model}}/s{{seed}}/finetune-{{task}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        task=f"{FUSION_DIR}/tasks/{{task}}.json",
        code=code("fusion_finetune"),
    wildcard_constraints:
        task=r"[A-Za-z0-9_.-]+",
        seed=r"\d+",
    params:
        finetune=lambda wc: cfg("vision", "fusion", "finetune"),
        seed=lambda wc: int(wc.seed),
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/fusion-{{model}}-s{{seed}}-finetune-{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/fusion-{{model}}-s{{seed}}-finetune-{{task}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/fusion_finetune.py"


rule fusion_router:
    output:
        router=f"{FUSION_DIR}/{{model}}/s{{seed}}/router.safetensors",
        history=f"{FUSION_DIR}/{{model}}/s{{seed}}/router-history.csv",
        record=f"{FUSION_DIR}/{{model}}/s{{seed}}/router.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        tasks=lambda wc: [f"{FUSION_DIR}/tasks/{t}.json" for t in fusion_grid.tasks(config)],
        taus=lambda wc: [f"{FUSION_DIR}/{wc.model}/s{wc.seed}/tau-{t}.safetensors" for t in fusion_grid.tasks(config)],
        code=code("fusion_router"),
    wildcard_constraints:
        seed=r"\d+",
    params:
        cfg=lambda wc: cfg("vision", "fusion", "router"),
        other_lambda=lambda wc: config["vision"]["fusion"]["other_lambda"],
        seed=lambda wc: int(wc.seed),
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/fusion-{{model}}-s{{seed}}-router.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/fusion-{{model}}-s{{seed}}-router.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/fusion_router.py"


rule fusion_evaluate:
    output:
        f"{FUSION_DIR}/{{model}}/s{{seed}}/points.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        tasks=lambda wc: [f"{FUSION_DIR}/tasks/{t}.json" for t in fusion_grid.tasks(config)],
        taus=lambda wc: [f"{FUSION_DIR}/{wc.model}/s{wc.seed}/tau-{t}.safetensors" for t in fusion_grid.tasks(config)],
        router=f"{FUSION_DIR}/{{model}}/s{{seed}}/router.safetensors",
        code=code("fusion_evaluate"),
    wildcard_constraints:
        seed=r"\d+",
    params:
        cfg=lambda wc: {k: v for k, v in cfg("vision", "fusion").items()
                        if k in ("router", "other_lambda", "n_preferences", "ta_grid", "n_interpolation", "eval_batch_size")},
        seed=lambda wc: int(wc.seed),
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/fusion-{{model}}-s{{seed}}-evaluate.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/fusion-{{model}}-s{{seed}}-evaluate.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/fusion_evaluate.py"


# Per seed and method the hypervolume (fusion-<model>.csv), every seed's evaluated models
# (fusion-points-<model>.csv, with per-item correctness) and per method and metric the mean,
# sd and 95 % interval over seeds or test items (fusion-<model>-summary.csv, compbench.fusion.summary).
rule fusion_summary:
    output:
        table=report(f"{RESULTS}/tables/fusion-{{model}}.csv", caption="../workflow/report/fusion_table.rst", category="Vision (MoE fusion)"),
        summary=report(f"{RESULTS}/tables/fusion-{{model}}-summary.csv", caption="../workflow/report/fusion_summary.rst", category="Vision (MoE fusion)"),
        points=f"{RESULTS}/tables/fusion-points-{{model}}.csv",
        figure=report(f"{RESULTS}/figures/fusion-{{model}}.png", caption="../workflow/report/fusion_fronts.rst", category="Vision (MoE fusion)"),
    input:
        points=lambda wc: fusion_grid.seed_files(config, wc.model, "points.csv"),
        routers=lambda wc: fusion_grid.seed_files(config, wc.model, "router.csv"),
        code=code("fusion_summary"),
    params:
        tasks=lambda wc: fusion_grid.tasks(config),
        reference=lambda wc: config["vision"]["fusion"]["hv_reference"],
    log:
        f"{RESULTS}/logs/vision/fusion-{{model}}-summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/fusion_summary.py"


rule fusion:
    input:
        lambda wc: lines.targets(config, "fusion"),

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
        seed=lambda wc: config["vision"]["fusion"]["seed"],
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
        tau=f"{FUSION_DIR}/{{model}}/tau-{{task}}.safetensors",
        record=f"{FUSION_DIR}/{{model}}/finetune-{{task}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        task=f"{FUSION_DIR}/tasks/{{task}}.json",
        code=code("fusion_finetune"),
    wildcard_constraints:
        task=r"[A-Za-z0-9_.-]+",
    params:
        finetune=lambda wc: cfg("vision", "fusion", "finetune"),
        seed=lambda wc: config["vision"]["fusion"]["seed"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/fusion-{{model}}-finetune-{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/fusion-{{model}}-finetune-{{task}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/fusion_finetune.py"


rule fusion_router:
    output:
        router=f"{FUSION_DIR}/{{model}}/router.safetensors",
        history=f"{FUSION_DIR}/{{model}}/router-history.csv",
        record=f"{FUSION_DIR}/{{model}}/router.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        tasks=lambda wc: [f"{FUSION_DIR}/tasks/{t}.json" for t in fusion_grid.tasks(config)],
        taus=lambda wc: [f"{FUSION_DIR}/{wc.model}/tau-{t}.safetensors" for t in fusion_grid.tasks(config)],
        code=code("fusion_router"),
    params:
        cfg=lambda wc: cfg("vision", "fusion", "router"),
        other_lambda=lambda wc: config["vision"]["fusion"]["other_lambda"],
        seed=lambda wc: config["vision"]["fusion"]["seed"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/fusion-{{model}}-router.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/fusion-{{model}}-router.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/fusion_router.py"


rule fusion_evaluate:
    output:
        f"{RESULTS}/tables/fusion-points-{{model}}.csv",
    input:
        model=lambda wc: model_dir(wc.model),
        tasks=lambda wc: [f"{FUSION_DIR}/tasks/{t}.json" for t in fusion_grid.tasks(config)],
        taus=lambda wc: [f"{FUSION_DIR}/{wc.model}/tau-{t}.safetensors" for t in fusion_grid.tasks(config)],
        router=f"{FUSION_DIR}/{{model}}/router.safetensors",
        code=code("fusion_evaluate"),
    params:
        cfg=lambda wc: {k: v for k, v in cfg("vision", "fusion").items()
                        if k in ("router", "other_lambda", "n_preferences", "ta_grid", "n_interpolation", "eval_batch_size", "seed")},
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/fusion-{{model}}-evaluate.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/fusion-{{model}}-evaluate.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/fusion_evaluate.py"


rule fusion_summary:
    output:
        table=report(f"{RESULTS}/tables/fusion-{{model}}.csv", caption="../workflow/report/fusion_table.rst", category="Vision (MoE fusion)"),
        figure=report(f"{RESULTS}/figures/fusion-{{model}}.png", caption="../workflow/report/fusion_fronts.rst", category="Vision (MoE fusion)"),
    input:
        points=f"{RESULTS}/tables/fusion-points-{{model}}.csv",
        router=f"{FUSION_DIR}/{{model}}/router.csv",
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

# Vision and fusion line (issue 10).
# PASS: generated (or real) images -> dense CNN -> per (method, MACs budget):
#   channel selection (PASS hyper-network / prompt-free ablation / L1 uniform),
#   physical channel removal, fine-tuning -> table + figures.
# Fusion: Pareto-set learning by MoE model fusion (see the fusion rules below).

rule pass_data:
    output:
        f"{PASS_DIR}/data.safetensors",
    input:
        code=pkg("pass_pipeline", "images", "channels"),
    params:
        data=lambda wc: cfg("vision", "pass", "data"),
    log:
        f"{RESULTS}/logs/vision/pass-data.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/pass-data.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/pass_data.py"


rule pass_dense:
    output:
        model=directory(f"{PASS_DIR}/dense"),
        record=f"{PASS_DIR}/dense.csv",
    input:
        data=f"{PASS_DIR}/data.safetensors",
        code=pkg("pass_pipeline", "channels", "images"),
    params:
        cfg=lambda wc: {k: v for k, v in cfg("vision", "pass").items() if k in ("model", "seed", "latency")},
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/pass-dense.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/pass-dense.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=lambda wc: pass_cfg()["gpu"],
    script:
        "../workflow/scripts/pass_dense.py"


rule pass_prune:
    output:
        model=directory(f"{PASS_DIR}/{{method}}-{{target}}/model"),
        record=f"{PASS_DIR}/{{method}}-{{target}}/record.csv",
        history=f"{PASS_DIR}/{{method}}-{{target}}/history.csv",
    input:
        data=f"{PASS_DIR}/data.safetensors",
        dense=f"{PASS_DIR}/dense",
        code=pkg("pass_pipeline", "pass_sparsity", "channels", "images"),
    wildcard_constraints:
        method=r"[a-z0-9_]+",
        target=r"0\.\d+",
    params:
        cfg=lambda wc: {k: v for k, v in cfg("vision", "pass").items() if k in ("hypernet", "finetune", "seed", "latency")},
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/pass-{{method}}-{{target}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/pass-{{method}}-{{target}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=lambda wc: pass_cfg()["gpu"],
    script:
        "../workflow/scripts/pass_prune.py"


rule pass_table:
    output:
        report(f"{RESULTS}/tables/pass.csv", caption="../workflow/report/pass_table.rst", category="Vision: PASS"),
    input:
        records=lambda wc: pass_records(),
    log:
        f"{RESULTS}/logs/vision/pass-table.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/pass_table.py"


rule figure_pass:
    output:
        accuracy=report(f"{RESULTS}/figures/pass-accuracy.png", caption="../workflow/report/pass_accuracy.rst", category="Vision: PASS"),
        channels=report(f"{RESULTS}/figures/pass-channels.png", caption="../workflow/report/pass_channels.rst", category="Vision: PASS"),
    input:
        table=f"{RESULTS}/tables/pass.csv",
        code=pkg("figures", "vision_plots"),
    log:
        f"{RESULTS}/logs/figures/pass.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_pass.py"


# ---------------------------------------------------------------------------
# Pareto-set learning by MoE model fusion: tasks -> per-task fine-tuning (task
# vectors) -> router training on Dirichlet preference rays -> every method's
# models on every task -> fronts + hypervolume.

rule fusion_tasks:
    output:
        f"{FUSION_DIR}/tasks/{{task}}.json",
    input:
        code=pkg("text_tasks"),
    wildcard_constraints:
        task=r"[A-Za-z0-9_.-]+",
    params:
        spec=lambda wc: fusion_task_spec(wc.task),
        n_train=lambda wc: fusion_cfg()["n_train"],
        n_test=lambda wc: fusion_cfg()["n_test"],
        seed=lambda wc: fusion_cfg()["seed"],
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
        code=pkg("fusion", "models"),
    wildcard_constraints:
        task=r"[A-Za-z0-9_.-]+",
    params:
        finetune=lambda wc: cfg("vision", "fusion", "finetune"),
        seed=lambda wc: fusion_cfg()["seed"],
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
        tasks=lambda wc: [f"{FUSION_DIR}/tasks/{t}.json" for t in fusion_tasks()],
        taus=lambda wc: [f"{FUSION_DIR}/{wc.model}/tau-{t}.safetensors" for t in fusion_tasks()],
        code=pkg("fusion", "models"),
    params:
        cfg=lambda wc: cfg("vision", "fusion", "router"),
        other_lambda=lambda wc: fusion_cfg()["other_lambda"],
        seed=lambda wc: fusion_cfg()["seed"],
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
        tasks=lambda wc: [f"{FUSION_DIR}/tasks/{t}.json" for t in fusion_tasks()],
        taus=lambda wc: [f"{FUSION_DIR}/{wc.model}/tau-{t}.safetensors" for t in fusion_tasks()],
        router=f"{FUSION_DIR}/{{model}}/router.safetensors",
        code=pkg("fusion", "models", "pareto"),
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
        table=report(f"{RESULTS}/tables/fusion-{{model}}.csv", caption="../workflow/report/fusion_table.rst", category="Vision: MoE fusion"),
        figure=report(f"{RESULTS}/figures/fusion-{{model}}.png", caption="../workflow/report/fusion_fronts.rst", category="Vision: MoE fusion"),
    input:
        points=f"{RESULTS}/tables/fusion-points-{{model}}.csv",
        router=f"{FUSION_DIR}/{{model}}/router.csv",
        code=pkg("fusion", "pareto", "figures", "vision_plots"),
    params:
        tasks=lambda wc: fusion_tasks(),
        reference=lambda wc: fusion_cfg()["hv_reference"],
    log:
        f"{RESULTS}/logs/vision/fusion-{{model}}-summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/fusion_summary.py"

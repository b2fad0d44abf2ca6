# Vision and fusion line (issue 10).
# PASS: generated (or real) images -> dense CNN -> per (method, MACs budget):
#   channel selection (PASS hyper-network / prompt-free ablation / L1 uniform),
#   physical channel removal, fine-tuning -> table + figures.
# Fusion: Pareto-set learning by MoE model fusion (see the fusion rules below).

PASS_DIR = f"{RESULTS}/vision/pass"


def pass_cfg():
    return config["vision"]["pass"]


def pass_records():
    p = pass_cfg()
    return [f"{PASS_DIR}/dense.csv"] + [
        f"{PASS_DIR}/{m}-{t}/record.csv" for m in p["methods"] for t in p["flops_targets"]
    ]


if "vision" in config and "pass" in config["vision"]:
    FINAL.append(lambda: [f"{RESULTS}/tables/pass.csv", f"{RESULTS}/figures/pass-accuracy.png", f"{RESULTS}/figures/pass-channels.png"])


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

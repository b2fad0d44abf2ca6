# Vision line, PASS (prompt-driven channel sparsity): generated (or real) images ->
# dense CNN -> per (method, MACs budget): channel selection (PASS hyper-network /
# prompt-free ablation / L1 uniform), physical channel removal, fine-tuning ->
# table + figures. Grid: compbench.vision.grid.
from compbench.vision import grid as pass_grid

PASS_DIR = pass_grid.PASS_DIR

rule pass_data:
    output:
        f"{PASS_DIR}/data.safetensors",
    input:
        code=code("pass_data"),
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
        code=code("pass_dense"),
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
        gpu=lambda wc: config["vision"]["pass"]["gpu"],
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
        code=code("pass_prune"),
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
        gpu=lambda wc: config["vision"]["pass"]["gpu"],
    script:
        "../workflow/scripts/pass_prune.py"


rule pass_table:
    output:
        report(f"{RESULTS}/tables/pass.csv", caption="../workflow/report/pass_table.rst", category="Vision (PASS)"),
    input:
        records=lambda wc: pass_grid.records(config),
        code=code("pass_table"),
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
        accuracy=report(f"{RESULTS}/figures/pass-accuracy.png", caption="../workflow/report/pass_accuracy.rst", category="Vision (PASS)"),
        channels=report(f"{RESULTS}/figures/pass-channels.png", caption="../workflow/report/pass_channels.rst", category="Vision (PASS)"),
    input:
        table=f"{RESULTS}/tables/pass.csv",
        code=code("figure_pass"),
    log:
        f"{RESULTS}/logs/figures/pass.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_pass.py"


rule vision:
    input:
        lambda wc: lines.targets(config, "vision"),

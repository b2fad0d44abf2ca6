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
        model=directory(f"{PASS_DIR}/s{{seed}}/dense"),
        record=f"{PASS_DIR}/s{{seed}}/dense.csv",
        images=f"{PASS_DIR}/s{{seed}}/dense-items.csv",
    input:
        data=f"{PASS_DIR}/data.safetensors",
        code=code("pass_dense"),
    wildcard_constraints:
        seed=r"\d+",
    params:
        cfg=lambda wc: {k: v for k, v in cfg("vision", "pass").items() if k in ("model", "latency")},
        seed=lambda wc: int(wc.seed),
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/pass-s{{seed}}-dense.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/pass-s{{seed}}-dense.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=lambda wc: config["vision"]["pass"]["gpu"],
    script:
        "../workflow/scripts/pass_dense.py"


rule pass_prune:
    output:
        model=directory(f"{PASS_DIR}/s{{seed}}/{{method}}-{{target}}/model"),
        record=f"{PASS_DIR}/s{{seed}}/{{method}}-{{target}}/record.csv",
        history=f"{PASS_DIR}/s{{seed}}/{{method}}-{{target}}/history.csv",
        images=f"{PASS_DIR}/s{{seed}}/{{method}}-{{target}}/items.csv",
    input:
        data=f"{PASS_DIR}/data.safetensors",
        dense=f"{PASS_DIR}/s{{seed}}/dense",
        code=code("pass_prune"),
    wildcard_constraints:
        seed=r"\d+",
        method=r"[a-z0-9_]+",
        target=r"0\.\d+",
    params:
        cfg=lambda wc: {k: v for k, v in cfg("vision", "pass").items() if k in ("hypernet", "finetune", "latency")},
        seed=lambda wc: int(wc.seed),
        device=config["device"],
    log:
        f"{RESULTS}/logs/vision/pass-s{{seed}}-{{method}}-{{target}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/vision/pass-s{{seed}}-{{method}}-{{target}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=lambda wc: config["vision"]["pass"]["gpu"],
    script:
        "../workflow/scripts/pass_prune.py"


# Per-seed rows (pass.csv), every run's per-image correctness (items.csv) and per method, budget
# and metric the mean, sd and 95 % interval over seeds or test images (pass-summary.csv).
rule pass_table:
    output:
        table=report(f"{RESULTS}/tables/pass.csv", caption="../workflow/report/pass_table.rst", category="Vision (PASS)"),
        summary=report(f"{RESULTS}/tables/pass-summary.csv", caption="../workflow/report/pass_summary.rst", category="Vision (PASS)"),
        images=pass_grid.ITEMS,
    input:
        records=lambda wc: pass_grid.records(config),
        images=lambda wc: pass_grid.item_files(config),
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
        summary=f"{RESULTS}/tables/pass-summary.csv",
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

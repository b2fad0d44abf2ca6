# Calibration token sets (compbench.calibration_data): what a pruning, quantisation
# or editing method sees. Shared by the pruning line, the calibration-data study and
# the composability line; a set is named <source[-format]>_<n>x<seq_len>_s<seed>.


rule calibration:
    output:
        f"{RESULTS}/calibration/{{model}}/{{source}}_{{n}}x{{seqlen}}_s{{seed}}.safetensors",
    input:
        model=lambda wc: model_dir(wc.model),
        corpus=lambda wc: corpus_files("train") if wc.source == "tiny" else [],
        code=code("calibration"),
    wildcard_constraints:
        n=r"\d+",
        seqlen=r"\d+",
        seed=r"\d+",
    params:
        sources=cfg("corpus", "sources"),
        corpus_dir=f"{RESULTS}/corpus",
        tasks=cfg("corpus", "tasks", default={}),
    log:
        f"{RESULTS}/logs/calibration/{{model}}/{{source}}_{{n}}x{{seqlen}}_s{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/calibration/{{model}}/{{source}}_{{n}}x{{seqlen}}_s{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
    script:
        "../workflow/scripts/calibration.py"

# Model stage: two sources behind one output, results/models/<name>/ (a
# save_pretrained directory). Which rule makes it follows from the model's
# `source` in the config, through disjoint wildcard constraints.


rule pretrain_tiny:
    output:
        model=directory(f"{RESULTS}/models/{{model}}"),
        curve=f"{RESULTS}/pretrain/{{model}}/curve.csv",
    input:
        tokenizer=f"{RESULTS}/tokenizer",
        train=corpus_files("train"),
        validation=corpus_files("validation"),
        code=code("pretrain"),
    wildcard_constraints:
        model=alternation(models_of("tiny")),
    params:
        tiny_model=cfg("tiny_model"),
        pretrain=cfg("pretrain"),
        sources=cfg("corpus", "sources"),
        device=config["device"],
    log:
        f"{RESULTS}/logs/pretrain/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{model}}.tsv"
    threads: model_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    script:
        "../workflow/scripts/pretrain.py"


rule download_model:
    output:
        model=directory(f"{RESULTS}/models/{{model}}"),
    input:
        code=code("download_model"),
    wildcard_constraints:
        model=alternation(models_of("hf")),
    params:
        spec=model_spec,
    log:
        f"{RESULTS}/logs/download/{{model}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=res("runtime"),
    retries: 2  # network hiccups are worth a retry
    script:
        "../workflow/scripts/download_model.py"

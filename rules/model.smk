# Model stage: every model source behind one output, results/models/<name>/ (a
# save_pretrained directory). Which rule makes it is the source's `rule` in
# compbench.sources (disjoint wildcard constraints); a `local` source has none:
# its directory is referenced where it is (model_dir in rules/common.smk).


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
        model=alternation(models_made_by("pretrain_tiny")),
    params:
        tiny_model=cfg("tiny_model"),
        pretrain=cfg("pretrain"),
        sources=cfg("corpus", "sources"),
        device=config["device"],
    log:
        f"{RESULTS}/logs/pretrain/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{model}}.tsv"
    threads: train_threads
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
        gpu=res("gpu"),
    priority: 10  # as rule corpus (rules/corpus.smk): the chain to the tiny model goes first
    script:
        "../workflow/scripts/pretrain.py"


rule obtain_model:
    output:
        model=directory(f"{RESULTS}/models/{{model}}"),
    input:
        files=model_source_inputs,
        code=code("obtain_model"),
    wildcard_constraints:
        model=alternation(models_made_by("obtain_model")),
    params:
        spec=model_spec,
        downloads=f"{RESULTS}/downloads",
    log:
        f"{RESULTS}/logs/obtain_model/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/obtain_model/{{model}}.tsv"
    threads: 2
    resources:
        mem_mb=res("mem_mb"),
        runtime=res("runtime"),
    retries: 2  # network hiccups are worth a retry
    script:
        "../workflow/scripts/obtain_model.py"

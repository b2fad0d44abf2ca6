# The offline corpus and the tokenizer of the embedded default.


rule corpus:
    output:
        expand(f"{RESULTS}/corpus/{{source}}/{{split}}.txt", source=config["corpus"]["sources"], split=["train", "validation", "test"]),
        stats=f"{RESULTS}/corpus/stats.json",
    input:
        code=code("corpus"),
    params:
        corpus=cfg("corpus"),
        cache=f"{RESULTS}/downloads",
    log:
        f"{RESULTS}/logs/corpus.log",
    benchmark:
        f"{RESULTS}/benchmarks/corpus.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    priority: 10  # the chain to the tiny model, which most jobs need: first whenever ready (issue 18; the speech
    # line could otherwise take both cores while pretraining waits, +6 min cold in run colddef3)
    script:
        "../workflow/scripts/corpus.py"


rule tokenizer:
    output:
        directory(f"{RESULTS}/tokenizer"),
    input:
        train=corpus_files("train"),
        code=code("tokenizer"),
    params:
        vocab_size=config["tokenizer"]["vocab_size"],
    log:
        f"{RESULTS}/logs/tokenizer.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokenizer.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=10,
    priority: 10  # as rule corpus
    script:
        "../workflow/scripts/tokenizer.py"

# Speech line: ASR corpus (espeak-ng synthesis or LibriSpeech) -> log-mel features ->
# Conformer-CTC trained dense | LR-SMS | DDP-ASR | MSRS -> WER/CER table and figures.


from compbench.speech import grid as speech_grid


SPEECH_WC = dict(corpus=alternation([config["speech"]["corpus"]["name"]] if "speech" in config else []))


rule speech_corpus:
    output:
        audio=directory(f"{RESULTS}/speech/{{corpus}}/audio"),
        manifest=f"{RESULTS}/speech/{{corpus}}/manifest.csv",
    input:
        code=code("speech_corpus"),
    wildcard_constraints:
        **SPEECH_WC,
    params:
        corpus=lambda wc: cfg("speech", "corpus"),
    log:
        f"{RESULTS}/logs/speech/{{corpus}}/corpus.log",
    benchmark:
        f"{RESULTS}/benchmarks/speech/{{corpus}}/corpus.tsv"
    threads: 2  # two utterances synthesised at a time (the same corpus for any count); on one core it
    # held one of the two while the tokenizer and pretraining, which take both, waited (issue 18)
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../workflow/scripts/speech_corpus.py"


rule speech_features:
    output:
        f"{RESULTS}/speech/{{corpus}}/features.safetensors",
    input:
        audio=f"{RESULTS}/speech/{{corpus}}/audio",
        manifest=f"{RESULTS}/speech/{{corpus}}/manifest.csv",
        code=code("speech_features"),
    wildcard_constraints:
        **SPEECH_WC,
    params:
        features=lambda wc: cfg("speech", "features"),
        sample_rate=lambda wc: config["speech"]["corpus"].get("sample_rate", 16000),
    log:
        f"{RESULTS}/logs/speech/{{corpus}}/features.log",
    benchmark:
        f"{RESULTS}/benchmarks/speech/{{corpus}}/features.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../workflow/scripts/speech_features.py"


rule speech_train:
    output:
        model=f"{RESULTS}/speech/{{corpus}}/runs/{{run}}/s{{seed}}/model.safetensors",
        metrics=f"{RESULTS}/speech/{{corpus}}/runs/{{run}}/s{{seed}}/metrics.csv",
        curve=f"{RESULTS}/speech/{{corpus}}/runs/{{run}}/s{{seed}}/curve.csv",
        hyps=f"{RESULTS}/speech/{{corpus}}/runs/{{run}}/s{{seed}}/hypotheses.csv",
    input:
        features=f"{RESULTS}/speech/{{corpus}}/features.safetensors",
        manifest=f"{RESULTS}/speech/{{corpus}}/manifest.csv",
        code=code("speech_train"),
        # a DDP run with a `time` budget trains as long as the dense run of its seed did: its metrics
        reference=lambda wc: [
            f"{RESULTS}/speech/{wc.corpus}/runs/{r}/s{wc.seed}/metrics.csv"
            for r in [speech_grid.time_reference(speech_grid.config_runs(config)[wc.run])]
            if r
        ],
    wildcard_constraints:
        run=alternation(list(speech_grid.config_runs(config))),
        seed=alternation([str(s) for s in speech_grid.seeds(config)]),
        **SPEECH_WC,
    params:
        run=lambda wc: canon(speech_grid.config_runs(config)[wc.run]),
        recipe=lambda wc: {k: cfg("speech", k) for k in ("features", "model", "train", "units")},
        seed=lambda wc: int(wc.seed),
        device=config["device"],
    log:
        f"{RESULTS}/logs/speech/{{corpus}}/train-{{run}}-s{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/speech/{{corpus}}/train-{{run}}-s{{seed}}.tsv"
    threads: lambda wc: config["speech"]["threads"]
    resources:
        mem_mb=3000,
        runtime=60,
    script:
        "../workflow/scripts/speech_train.py"


# Per-seed rows (speech.csv), per-utterance errors (items.csv) and per run and metric the
# mean, sd and 95 % interval over seeds or test utterances (speech-summary.csv, compbench.stats).
rule speech_table:
    output:
        table=report(f"{RESULTS}/tables/speech.csv", caption="../workflow/report/speech_table.rst", category="Speech"),
        summary=report(f"{RESULTS}/tables/speech-summary.csv", caption="../workflow/report/speech_summary.rst", category="Speech"),
        utterances=speech_grid.ITEMS,
    input:
        tables=lambda wc: speech_grid.run_files(config, "metrics.csv"),
        hyps=lambda wc: speech_grid.run_files(config, "hypotheses.csv"),
        code=code("speech_table"),
    log:
        f"{RESULTS}/logs/speech/table.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/speech_table.py"


rule figure_speech:
    output:
        lrsms=report(f"{RESULTS}/figures/speech-lrsms.png", caption="../workflow/report/speech_lrsms.rst", category="Speech"),
        ddp=report(f"{RESULTS}/figures/speech-ddp.png", caption="../workflow/report/speech_ddp.rst", category="Speech"),
        msrs=report(f"{RESULTS}/figures/speech-msrs.png", caption="../workflow/report/speech_msrs.rst", category="Speech"),
    input:
        table=f"{RESULTS}/tables/speech.csv",
        summary=f"{RESULTS}/tables/speech-summary.csv",
        curves=lambda wc: speech_grid.run_files(config, "curve.csv", [r for r in speech_grid.config_runs(config) if r.startswith("msrs")]),
        code=code("figure_speech"),
    log:
        f"{RESULTS}/logs/figures/speech.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_speech.py"


rule speech:
    input:
        lambda wc: lines.targets(config, "speech"),

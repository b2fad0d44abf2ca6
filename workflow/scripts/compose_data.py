"""Rule compose_data: the composability study's edits, probes, forget/retain sets and tests."""

from compbench import device as dev
from compbench import runlog
from compbench.artifacts import write_json
from compbench.compose import data as compose_data

with runlog.to_file(snakemake.log[0]) as log:
    p = snakemake.params
    dev.set_threads(snakemake.threads)
    model_dir = snakemake.input.model or None
    device = dev.pick(p.device) if model_dir else "cpu"
    data = compose_data.build(
        p.data, corpus_dir=p.corpus_dir, corpus_sources=p.sources, knowledge=p.knowledge, model_dir=model_dir, device=device
    )
    if data.knowledge:
        known = [r for r in data.knowledge if r["known"]]
        log.info("knowledge check: the dense model knows %d of %d candidate facts", len(known), len(data.knowledge))
        for rel in sorted({r["relation"] for r in data.knowledge}):
            rows = [r for r in data.knowledge if r["relation"] == rel]
            log.info("  %s: %d of %d known", rel, sum(r["known"] for r in rows), len(rows))
    log.info(
        "%d edits, %d locality probes, %d forget / %d retain texts, %d forget and %d utility questions",
        len(data.edits),
        len(data.locality),
        len(data.forget_texts),
        len(data.retain_texts),
        len(data.forget_mcq),
        len(data.utility_mcq),
    )
    write_json(snakemake.output[0], data.to_json())

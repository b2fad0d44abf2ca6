"""Rule compose_data: the composability study's edits, probes, forget/retain sets and tests."""

from compbench import runlog
from compbench.artifacts import write_json
from compbench.compose import data as compose_data

with runlog.to_file(snakemake.log[0]) as log:
    p = snakemake.params
    data = compose_data.build(p.data, corpus_dir=p.corpus_dir, corpus_sources=p.sources, knowledge=p.knowledge)
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

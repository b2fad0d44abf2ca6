"""Rule speech_corpus: synthesise (espeak-ng) or convert (LibriSpeech) an ASR corpus to 16-bit WAV + manifest."""

from compbench import device as dev
from compbench import provenance, runlog
from compbench.artifacts import atomic_path, write_table
from compbench.speech import corpora

with runlog.to_file(snakemake.log[0]) as log:
    spec = snakemake.params.corpus
    with provenance.measure(dev.pick("cpu")) as run:
        with atomic_path(snakemake.output.audio) as tmp:
            manifest = corpora.build(spec, tmp, log=log, workers=snakemake.threads)
    rec = provenance.stamp({"corpus": spec}, spec.get("seed"), run)
    for split, g in manifest.groupby("split"):
        log.info("%s: %d utterances, %.1f s audio, %d voices", split, len(g), g.seconds.sum(), g.voice.nunique())
    log.info("corpus built in %.1f s", rec["wall_s"])
    write_table(snakemake.output.manifest, manifest)

"""Rule speech_features: log-mel features of every utterance (manifest order), one safetensors file."""

from compbench import runlog
from compbench.artifacts import read_table, save_tensors
from compbench.speech import features

with runlog.to_file(snakemake.log[0]) as log:
    manifest = read_table(snakemake.input.manifest)
    spec = snakemake.params.features
    tensors = features.compute(manifest, snakemake.input.audio, spec, snakemake.params.sample_rate)
    log.info("%d utterances, %d frames x %d mels", len(manifest), *tensors["feats"].shape)
    save_tensors(snakemake.output[0], tensors, metadata={"n_utterances": len(manifest), **spec})

"""Rule obtain_model: make the model directory of a source that is fetched or
converted (hf: hub download; gguf: dequantise a GGUF file), see compbench.sources."""

from compbench import device as dev
from compbench import models, runlog

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    name, spec = snakemake.wildcards.model, snakemake.params.spec
    log.info("model %s from source %s: %s", name, spec["source"], spec)
    record = models.obtain(name, spec, snakemake.output.model, snakemake.params.downloads)
    log.info("provenance: %s", record)

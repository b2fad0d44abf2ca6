"""Rule download_model: fetch a Hugging Face hub model (safetensors only)."""

from compbench import models, runlog

with runlog.to_file(snakemake.log[0]) as log:
    spec = snakemake.params.spec
    log.info("downloading %s (revision %s)", spec["id"], spec.get("revision"))
    models.download(spec["id"], snakemake.output.model, revision=spec.get("revision"))

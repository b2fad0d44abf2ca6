"""Rule pass_data: the image set of the PASS line (generated here, or a real one)."""

from compbench import runlog
from compbench.artifacts import save_tensors
from compbench.vision import pipeline as pass_pipeline

with runlog.to_file(snakemake.log[0]) as log:
    spec = snakemake.params.data
    d = pass_pipeline.make_data(spec)
    log.info("images: train %s, test %s, classes %d", tuple(d["x_train"].shape), tuple(d["x_test"].shape), int(d["y_train"].max()) + 1)
    save_tensors(snakemake.output[0], d, metadata={"data": spec})

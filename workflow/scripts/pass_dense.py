"""Rule pass_dense: train the dense CNN with one seed; record its accuracy, MACs, parameters, latency
and every test image's correctness."""

import pandas as pd

from compbench import device as dev
from compbench import provenance, runlog, stats
from compbench.artifacts import write_table
from compbench.vision import pipeline as pass_pipeline

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    seed = snakemake.params.seed
    cfg = {**snakemake.params.cfg, "seed": seed}
    data = pass_pipeline.load_data(snakemake.input.data)
    with provenance.measure(device) as run:
        model, arch, losses = pass_pipeline.train_dense(cfg, data, device, log)
    rec = pass_pipeline.measure(model, data, tuple(data["x_train"].shape[1:]), cfg["latency"], device)
    correct = rec.pop("correct")
    log.info("dense, seed %d: %s", seed, rec)
    pass_pipeline.save_model(snakemake.output.model, model, arch)
    stamp = provenance.stamp({"pass": cfg}, seed, run)
    rows = [{"method": "dense", "target": 1.0, "metric": k, "value": v} for k, v in rec.items()]
    rows.append({"method": "dense", "target": 1.0, "metric": "train_loss", "value": losses[-1]})
    write_table(snakemake.output.record, pd.DataFrame(rows).assign(**stamp))
    items = [{"method": "dense", "target": 1.0, "seed": seed, "n": len(correct), "correct": stats.bits(correct.numpy())}]
    write_table(snakemake.output.images, pd.DataFrame(items))

"""Rule pass_prune: one channel-sparsity method at one MACs budget with one seed: select, remove,
fine-tune, measure (and every test image's correctness)."""

import pandas as pd

from compbench import device as dev
from compbench import provenance, runlog, stats
from compbench.artifacts import read_json, write_table
from compbench.vision import pipeline as pass_pipeline

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    seed = snakemake.params.seed
    cfg = {**snakemake.params.cfg, "seed": seed}
    method, target = snakemake.wildcards.method, float(snakemake.wildcards.target)
    data = pass_pipeline.load_data(snakemake.input.data)
    dense = pass_pipeline.load_model(snakemake.input.dense, device)
    with provenance.measure(device) as run:
        pruned, keep, rec, info = pass_pipeline.prune_and_finetune(cfg, method, target, dense, data, device, log)
    correct = rec.pop("correct")
    rec["flops_ratio"] = (
        rec["macs"] / pass_pipeline.measure(dense, data, tuple(data["x_train"].shape[1:]), {"batch": 1, "repeats": 1}, device)["macs"]
    )
    log.info("%s @ %.2f, seed %d: %s", method, target, seed, rec)
    pass_pipeline.save_model(snakemake.output.model, pruned, read_json(f"{snakemake.input.dense}/arch.json"), keep)
    stamp = provenance.stamp({"pass": cfg, "method": method, "target": target}, seed, run)
    text = {k: rec.pop(k) for k in ("kept", "widths", "ratios")}
    rows = [{"method": method, "target": target, "metric": k, "value": v, **text} for k, v in rec.items()]
    write_table(snakemake.output.record, pd.DataFrame(rows).assign(**stamp))
    write_table(snakemake.output.history, pd.DataFrame(info["history"] or [{"step": 0}]).assign(method=method, target=target, seed=seed))
    items = [{"method": method, "target": target, "seed": seed, "n": len(correct), "correct": stats.bits(correct.numpy())}]
    write_table(snakemake.output.images, pd.DataFrame(items))

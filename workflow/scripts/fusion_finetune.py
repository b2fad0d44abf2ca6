"""Rule fusion_finetune: fine-tune the model on one task with one seed; store its task vector τ = θ_t − θ_0."""

import pandas as pd
from transformers import AutoTokenizer

from compbench import device as dev
from compbench import models, provenance, runlog
from compbench.artifacts import read_json, save_tensors, write_table
from compbench.fusion import moe as fusion

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    ft, seed = snakemake.params.finetune, snakemake.params.seed
    task = read_json(snakemake.input.task)
    tok = AutoTokenizer.from_pretrained(snakemake.input.model)
    model = models.load(snakemake.input.model, device=device)
    train, test = fusion.TaskData(tok, task, "train", device), fusion.TaskData(tok, task, "test", device)
    before = fusion.evaluate(model, test)
    with provenance.measure(device) as run:
        tau, losses = fusion.finetune(model, train, ft["steps"], ft["batch_size"], ft["lr"], seed, log)
    after = fusion.evaluate(model, test)
    log.info("%s: before %s after %s", task["name"], before, after)
    save_tensors(snakemake.output.tau, tau, metadata={"task": task["name"], "base": snakemake.input.model})
    stamp = provenance.stamp({"finetune": ft, "task": task["name"]}, seed, run)
    rows = [
        {"model": snakemake.wildcards.model, "task": task["name"], "stage": s, "metric": k, "value": v}
        for s, res in (("base", before), ("finetuned", after))
        for k, v in res.items()
    ]
    rows.append(
        {"model": snakemake.wildcards.model, "task": task["name"], "stage": "finetuned", "metric": "final_train_loss", "value": losses[-1]}
    )
    write_table(snakemake.output.record, pd.DataFrame(rows).assign(**stamp))

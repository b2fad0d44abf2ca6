"""Rule speech_train: train one speech run (dense / LR-SMS / DDP-ASR / MSRS) with one seed and evaluate
WER/CER; the hypotheses file keeps every utterance's errors (the per-item results of the intervals)."""

import json

import pandas as pd

from compbench import device as dev
from compbench import provenance, runlog
from compbench.artifacts import load_tensors, read_table, save_tensors, write_table
from compbench.speech import train, wer

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    recipe, spec, name, seed = snakemake.params.recipe, snakemake.params.run, snakemake.wildcards.run, snakemake.params.seed
    manifest = read_table(snakemake.input.manifest)
    data = train.Data.from_tensors(load_tensors(snakemake.input.features), manifest, recipe["units"], recipe["features"]["hop_ms"] / 1000)
    log.info(
        "run %s, seed %d: %s; %d symbols; train/dev/test %d/%d/%d",
        name,
        seed,
        spec,
        len(data.vocab),
        *(len(data.index(s)) for s in ("train", "dev", "test")),
    )
    time_budget_s = None
    if snakemake.input.reference:  # a `time` budget: the dense run's training wall time
        ref = read_table(snakemake.input.reference[0])
        time_budget_s = float(ref.loc[ref.metric == "train_s", "value"].iloc[0])
        log.info("time budget: %.1f s (the training time of %s)", time_budget_s, snakemake.input.reference[0])
    with provenance.measure(device) as run:
        out = train.train(spec, recipe, data, device, log=log, time_budget_s=time_budget_s, seed=seed)
    m = out["metrics"]
    log.info(
        "%s: test WER %.4f CER %.4f, %d params (%d effective), %.1f s training, %.0f s audio",
        name,
        m.get("test_wer", float("nan")),
        m.get("test_cer", float("nan")),
        m["params"],
        m["params_effective"],
        m["train_s"],
        m["audio_s"],
    )
    rec = provenance.stamp({"run": spec, "recipe": recipe}, seed, run)
    setting = {k: v for k, v in spec.items() if k != "variant"}
    rows = [
        {
            "corpus": snakemake.wildcards.corpus,
            "run": name,
            "variant": spec["variant"],
            "setting": json.dumps(setting, sort_keys=True),
            "metric": k,
            "value": v,
        }
        for k, v in m.items()
    ]
    rows.append(
        {
            "corpus": snakemake.wildcards.corpus,
            "run": name,
            "variant": spec["variant"],
            "setting": json.dumps(setting, sort_keys=True),
            "metric": "info",
            "value": json.dumps(out["info"], sort_keys=True, default=str),
        }
    )
    write_table(snakemake.output.metrics, pd.DataFrame(rows).assign(**rec))
    write_table(snakemake.output.curve, out["curve"].assign(run=name, seed=seed))
    hyp_rows = [
        {"split": s, "id": manifest.id.iloc[u], "reference": data.texts[u], "hypothesis": h, **e}
        for s, hs in out["hyps"].items()
        for u, h, e in zip(data.index(s), hs, wer.per_utterance([data.texts[u] for u in data.index(s)], hs))
    ]
    write_table(snakemake.output.hyps, pd.DataFrame(hyp_rows).assign(run=name, seed=seed))
    state = {k: v.detach().cpu() for k, v in out["model"].state_dict().items()}
    save_tensors(
        snakemake.output.model, state, metadata={"run": name, "seed": str(seed), "vocab": json.dumps(data.vocab), "spec": json.dumps(spec)}
    )

"""Rule lowrank_table: tidy table of the low-rank line (one row per model, variant, setting, metric)
and the per-matrix rank table."""

import pandas as pd

from compbench import runlog
from compbench.artifacts import read_table, write_table

COMPRESS_METRICS = ["rank_reduction", "rounding", "param_compression", "n_lrc", "factors_bytes", "replaced_dense_bytes", "tau", "trimmed"]
FT_METRICS = [
    "trainable_params",
    "total_params",
    "trainable_fraction",
    "total_tokens",
    "train_s",
    "tokens_per_s",
    "peak_rss_mb",
    "rss_growth_mb",
    "optimizer_state_mb",
    "peak_cuda_mb",
    "val_loss_before",
    "val_loss_after",
    "train_loss_last10",
]

with runlog.to_file(snakemake.log[0]) as log:
    m = snakemake.wildcards.model
    comp = pd.concat([read_table(p) for p in snakemake.input.records], ignore_index=True)
    ft = pd.concat([read_table(p) for p in snakemake.input.curves], ignore_index=True) if snakemake.input.curves else pd.DataFrame()
    ppl = pd.concat([read_table(p) for p in snakemake.input.perplexity], ignore_index=True)
    ppl = ppl[ppl.metric == "perplexity"]
    rows = []
    setting = {}  # variant -> (allocation, ratio, finetune)
    for v, g in comp.groupby("variant"):
        r = g.iloc[0]
        setting[v] = (r["allocation"], float(r["target"]), "none")
        for k in COMPRESS_METRICS:
            if k in g and pd.notna(r[k]):
                rows.append({"variant": v, "metric": k, "value": float(r[k])})
        rows.append({"variant": v, "metric": "params_after", "value": float(g.params_after.sum())})
        rows.append({"variant": v, "metric": "params_before", "value": float(g.params_before.sum())})
    for v, g in ft.groupby("variant") if len(ft) else []:
        r = g.iloc[-1]
        setting[v] = (r["allocation"], float(r["ratio"]), r["mode"])
        for k in FT_METRICS:
            if k in g and pd.notna(r[k]):
                rows.append({"variant": v, "metric": k, "value": float(r[k])})
    setting["dense"] = ("dense", 0.0, "none")
    for r in ppl.itertuples():
        if r.variant in setting:
            rows.append({"variant": r.variant, "dataset": r.dataset, "metric": "perplexity", "value": float(r.value)})
    t = pd.DataFrame(rows)
    t.insert(0, "model", m)
    t["allocation"] = t.variant.map(lambda v: setting[v][0])
    t["ratio"] = t.variant.map(lambda v: setting[v][1])
    t["finetune"] = t.variant.map(lambda v: setting[v][2])
    t = t[["model", "variant", "allocation", "ratio", "finetune", "dataset", "metric", "value"]]
    log.info("\n%s", t[t.metric.isin(["perplexity", "param_compression", "tokens_per_s"])].to_string())
    write_table(snakemake.output.table, t)
    keep = [
        "model",
        "variant",
        "allocation",
        "target",
        "module",
        "block",
        "kind",
        "rows",
        "cols",
        "full_rank",
        "pruned_rank",
        "kept_rank",
        "lrc",
        "params_before",
        "params_after",
        "rel_error",
        "tau",
        "min_ratio",
    ]
    write_table(snakemake.output.ranks, comp[[c for c in keep if c in comp]])

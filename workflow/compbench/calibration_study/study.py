"""The calibration-data study (Bandari et al., EMNLP 2024): its tables.

The grid (which calibration sets, methods, sparsities) is :mod:`compbench.calibration_study.grid`;
the figure :mod:`compbench.calibration_study.plots`.
"""

from __future__ import annotations

from compbench.calibration_catalogue import CATALOGUE
from compbench.calibration_study.grid import parse_variant

# ------------------------------------------------------------------- tables


def table(records, perplexity, zeroshot, dense_variant: str = "dense"):
    """The study's tidy table: one row per (model, variant, metric, dataset), with
    the cell's coordinates and, for accuracies, the change vs the dense model.

    ``records``: prune records of the cells; ``perplexity`` / ``zeroshot``: the
    spine's tidy rows (model, variant, dataset, metric, value, wall_s …)."""
    import pandas as pd

    zs = zeroshot[zeroshot.metric.isin(["acc", "acc_norm", "exact_match"])]
    ppl = perplexity[perplexity.metric == "perplexity"]
    cols = ["model", "variant", "dataset", "metric", "value"]
    rows = pd.concat(
        [zs[cols + ["wall_s"]].rename(columns={"wall_s": "eval_s"}), ppl[cols + ["wall_s"]].rename(columns={"wall_s": "eval_s"})]
    )
    dense = rows[rows.variant == dense_variant].set_index(["model", "dataset", "metric"]).value.rename("dense")
    rows = rows.join(dense, on=["model", "dataset", "metric"])
    rows["delta"] = rows.value - rows.dense
    coords = []
    for v in rows.variant:
        p = parse_variant(v)
        coords.append(
            {
                "source": p["set"].split("-")[0],
                "format": (p["set"].split("-") + ["raw"])[1],
                "n_samples": int(p["n"]),
                "seq_len": int(p["len"]),
                "seed": int(p["seed"]),
                "method": p["method"],
                "sparsity": float(p["sparsity"]),
            }
            if p
            else {"source": "(dense)", "format": "", "n_samples": None, "seq_len": None, "seed": None, "method": "dense", "sparsity": 0.0}
        )
    rows = pd.concat([rows.reset_index(drop=True), pd.DataFrame(coords)], axis=1)
    rows["category"] = [CATALOGUE[s][0] if s in CATALOGUE else "dense" for s in rows.source]
    if len(records):
        rec = records[["model", "variant", "sparsity", "wall_s"]].rename(columns={"sparsity": "realised_sparsity", "wall_s": "prune_s"})
        rows = rows.merge(rec, on=["model", "variant"], how="left")
    return rows


def paper_table(tidy, metric: str = "acc"):
    """The paper's shape: one row per (method, sparsity, calibration source, format),
    one column per task (accuracy, %, mean over seeds), their mean, and the perplexity."""
    import pandas as pd

    t = tidy.copy()
    t["format"] = t["format"].fillna("")
    idx = ["method", "sparsity", "category", "source", "format"]
    wide = t[t.metric == metric].pivot_table(index=idx, columns="dataset", values="value", aggfunc="mean") * 100
    wide["mean"] = wide.mean(axis=1)
    ppl = t[t.metric == "perplexity"].pivot_table(index=idx, columns="dataset", values="value", aggfunc="mean")
    ppl.columns = [f"ppl_{c}" for c in ppl.columns]
    out = wide.join(ppl).reset_index()
    order = {"dense": 0, "pretraining": 1, "arithmetic": 2, "nli": 3, "commonsense": 4, "control": 5}
    out["_m"] = (out.method != "dense").astype(int)
    out["_c"] = out.category.map(order)
    out = out.sort_values(["_m", "method", "sparsity", "_c", "source", "format"]).drop(columns=["_m", "_c"])
    return pd.DataFrame(out).reset_index(drop=True)

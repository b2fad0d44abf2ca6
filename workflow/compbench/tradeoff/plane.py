"""The trade-off table: every variant of a model with its stored size, its quality and
whether it is on the Pareto front (torch-free; the rule tradeoff_table)."""

from __future__ import annotations

import pandas as pd

from compbench.tradeoff import pareto, storage

ZEROSHOT_METRIC = "acc"  # lm-eval's accuracy, averaged over the configured tasks


def inventory(matrices: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """Decoder linear -> (rows, cols), from the spectra stage's matrices.csv."""
    return {r.module: (int(r.rows), int(r.cols)) for r in matrices.itertuples()}


def table(model: str, plane: dict[str, tuple[str, str]], inv: dict, perplexity: pd.DataFrame, zeroshot: pd.DataFrame | None, dataset: str):
    """One row per variant of ``plane`` (variant -> (line, directory)): model, variant, line,
    method, storage format, bytes, effective params, bits per weight (of the dense model's
    decoder linears), perplexity on every data set, mean zero-shot accuracy (NaN where not
    measured) and ``on_front`` (bytes vs perplexity on ``dataset``; ``on_front_zeroshot``:
    bytes vs accuracy)."""
    n_dense = sum(r * c for r, c in inv.values())
    rows = []
    for variant, (line, path) in plane.items():
        s = storage.size(path, inv)
        rows.append(
            {
                "model": model,
                "variant": variant,
                "line": line,
                "method": s.method,
                "format": s.format,
                "bytes": s.bytes,
                "params": s.params,
                "bits_per_weight": s.bits / n_dense,
            }
        )
    t = pd.DataFrame(rows)
    ppl = perplexity[perplexity.metric == "perplexity"].pivot_table(index="variant", columns="dataset", values="value")
    datasets = list(ppl.columns)
    if dataset not in datasets:
        raise ValueError(f"no perplexity on {dataset!r} in the inputs; have: {', '.join(map(str, datasets)) or 'none'}")
    for d in datasets:
        t[f"perplexity_{d}"] = t.variant.map(ppl[d])
    zs = zeroshot[zeroshot.metric == ZEROSHOT_METRIC] if zeroshot is not None and len(zeroshot) else None
    t["zeroshot_acc"] = t.variant.map(zs.groupby("variant").value.mean()) if zs is not None else float("nan")
    t["on_front"] = pareto.front(t["bytes"], t[f"perplexity_{dataset}"])
    t["on_front_zeroshot"] = pareto.front(t["bytes"], -t["zeroshot_acc"])
    return t.sort_values(["bytes", "variant"]).reset_index(drop=True)

"""The calibration-data study (Bandari et al., EMNLP 2024): its grid, its tables, its figure.

Grid: calibration source × format × pruning method × sparsity × seed at one
(number of samples, sequence length), plus optional sweeps that override some
of these lists (the paper's sweeps of sample count, tokens per sample and ICL
count). A downstream source gets every configured downstream format it can
take (``cot`` only where the data has rationales); a pre-training source or the
random control gets ``raw`` windows. Each cell is a pruned variant
``calib-<source[-format]>_<n>x<len>_s<seed>-<method>-<sparsity>`` (uniform
sparsity, as in the paper), evaluated by lm-eval and by perplexity.

Torch-free: the rules import this module to build the DAG.
"""

from __future__ import annotations

import re

from compbench.calibration_catalogue import CATALOGUE, check, parse_format, set_name

GRID_KEYS = ("sources", "formats", "methods", "sparsities", "n_samples", "seq_len", "seeds")
VARIANT = re.compile(r"calib-(?P<calib>(?P<set>[a-z0-9_]+(?:-[a-z0-9]+)?)_(?P<n>\d+)x(?P<len>\d+)_s(?P<seed>\d+))-(?P<method>[a-z]+)-(?P<sparsity>0\.\d+)")


def sets_of(sources, formats) -> list[tuple[str, str]]:
    """(source, format) pairs: raw for plain-text sources, every applicable format for downstream ones."""
    out = []
    for s in sources:
        if CATALOGUE[s][0] in ("pretraining", "control"):
            out.append((s, "raw"))
            continue
        for f in formats:
            if parse_format(f)[0] == "raw":
                continue
            if parse_format(f)[0] == "cot" and not CATALOGUE[s][2]:
                continue  # no rationales in this data set
            out.append((s, f))
    return out


def cells(study: dict) -> list[dict]:
    """Every grid cell of the main grid and of the sweeps, each once, in config order."""
    grids = [study] + [{**study, **{k: v for k, v in sw.items() if k in GRID_KEYS}} for sw in study.get("sweeps", [])]
    seen, out = set(), []
    for g in grids:
        for source, fmt in sets_of(g["sources"], g["formats"]):
            for n in g["n_samples"]:
                for length in g["seq_len"]:
                    for seed in g["seeds"]:
                        for method in g["methods"]:
                            for sp in g["sparsities"]:
                                c = {"source": source, "format": fmt, "set": set_name(source, fmt), "category": CATALOGUE[source][0],
                                     "n_samples": int(n), "seq_len": int(length), "seed": int(seed), "method": method,
                                     "sparsity": float(sp)}
                                c["calib"] = f"{c['set']}_{c['n_samples']}x{c['seq_len']}_s{c['seed']}"
                                c["variant"] = f"calib-{c['calib']}-{method}-{sp}"
                                if c["variant"] not in seen:
                                    seen.add(c["variant"])
                                    out.append(c)
    return out


def variant_dirs(study: dict, results: str, model: str) -> dict[str, str]:
    """Variant name -> directory of every cell (a VARIANT_PROVIDERS entry)."""
    return {c["variant"]: f"{results}/variants/{model}/{c['variant']}" for c in cells(study)}


def generated_tasks(study: dict) -> list[str]:
    """The generated tasks (compbench.tasks) among the lm-eval tasks (named cb_<task>)."""
    return [t[len("cb_"):] for t in study["lm_eval"]["tasks"] if t.startswith("cb_")]


def parse_variant(name: str) -> dict | None:
    m = VARIANT.fullmatch(name)
    return m.groupdict() if m else None


def validate(study: dict) -> None:
    """Fail fast (ValueError naming the key) on a grid that cannot be built."""
    for g, where in [(study, "calibration_study")] + [(sw, f"calibration_study.sweeps[{i}]") for i, sw in enumerate(study.get("sweeps", []))]:
        for s in g.get("sources", []):
            if s not in CATALOGUE:
                raise ValueError(f"{where}.sources: unknown calibration source {s!r}; allowed: {', '.join(CATALOGUE)}")
        for f in g.get("formats", []):
            try:
                if parse_format(f)[0] == "raw":
                    raise ValueError("'raw' is implied for plain-text sources")
            except ValueError as e:
                raise ValueError(f"{where}.formats: {f!r}: {e}") from None
    cs = cells(study)
    if not cs:
        raise ValueError("calibration_study: the grid is empty (no source takes any of the formats)")
    for c in cs:
        check(c["source"], c["format"])


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
    rows = pd.concat([zs[cols + ["wall_s"]].rename(columns={"wall_s": "eval_s"}), ppl[cols + ["wall_s"]].rename(columns={"wall_s": "eval_s"})])
    dense = rows[rows.variant == dense_variant].set_index(["model", "dataset", "metric"]).value.rename("dense")
    rows = rows.join(dense, on=["model", "dataset", "metric"])
    rows["delta"] = rows.value - rows.dense
    coords = []
    for v in rows.variant:
        p = parse_variant(v)
        coords.append(
            {"source": p["set"].split("-")[0], "format": (p["set"].split("-") + ["raw"])[1], "n_samples": int(p["n"]), "seq_len": int(p["len"]),
             "seed": int(p["seed"]), "method": p["method"], "sparsity": float(p["sparsity"])}
            if p else {"source": "(dense)", "format": "", "n_samples": None, "seq_len": None, "seed": None, "method": "dense", "sparsity": 0.0}
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


def heatmap(tidy, path, metric: str = "acc", title: str = "") -> None:
    """Calibration set (rows) × evaluation task (columns), colour = accuracy change vs dense
    (percentage points), one panel per pruning method and sparsity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    acc = tidy[(tidy.metric == metric) & (tidy.method != "dense")].copy()
    acc["set"] = [s if f == "raw" else f"{s}-{f}" for s, f in zip(acc.source, acc.format)]
    panels = sorted({(m, s) for m, s in zip(acc.method, acc.sparsity)})
    tasks = sorted(acc.dataset.unique())
    dense = tidy[(tidy.metric == metric) & (tidy.method == "dense")].groupby("dataset").value.mean()
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(1.2 + 1.3 * len(tasks) * max(1, len(panels)), 1.2 + 0.45 * acc.set.nunique()),
                             squeeze=False, constrained_layout=True)
    lim = max(1.0, float(np.nanmax(np.abs(acc.delta))) * 100) if len(acc) else 1.0
    for ax, (m, sp) in zip(axes[0], panels):
        sub = acc[(acc.method == m) & (acc.sparsity == sp)].pivot_table(index="set", columns="dataset", values="delta", aggfunc="mean")
        sub = sub.reindex(columns=tasks) * 100
        im = ax.imshow(sub.values, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(tasks)), [f"{t}\n(dense {dense.get(t, np.nan) * 100:.0f}%)" for t in tasks], fontsize=7)
        ax.set_yticks(range(len(sub.index)), sub.index, fontsize=7)
        for i in range(sub.shape[0]):
            for j in range(sub.shape[1]):
                v = sub.values[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=6)
        ax.set_title(f"{m} @ {sp:g}", fontsize=9)
    fig.colorbar(im, ax=axes[0, -1], label=f"{metric} change vs dense (points)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=130)
    plt.close(fig)

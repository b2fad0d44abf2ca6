"""The calibration-data study's grid (Bandari et al., EMNLP 2024).

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

from compbench import lines
from compbench.calibration_catalogue import CATALOGUE, parse_format, set_name
from compbench.lines import RESULTS

GRID_KEYS = ("sources", "formats", "methods", "sparsities", "n_samples", "seq_len", "seeds")
VARIANT = re.compile(
    r"calib-(?P<calib>(?P<set>[a-z0-9_]+(?:-[a-z0-9]+)?)_(?P<n>\d+)x(?P<len>\d+)_s(?P<seed>\d+))-(?P<method>[a-z]+)-(?P<sparsity>0\.\d+)"
)


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
                                c = {
                                    "source": source,
                                    "format": fmt,
                                    "set": set_name(source, fmt),
                                    "category": CATALOGUE[source][0],
                                    "n_samples": int(n),
                                    "seq_len": int(length),
                                    "seed": int(seed),
                                    "method": method,
                                    "sparsity": float(sp),
                                }
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
    return [t[len("cb_") :] for t in study["lm_eval"]["tasks"] if t.startswith("cb_")]


def parse_variant(name: str) -> dict | None:
    m = VARIANT.fullmatch(name)
    return m.groupdict() if m else None


def variants(config: dict, model: str) -> dict[str, str]:
    return variant_dirs(config["calibration_study"], RESULTS, model)


def lm_eval_variants(config: dict, model: str) -> list[str]:
    """The variants the study evaluates zero-shot: the dense model and every cell (rule lm_eval, compbench.lines.lm_eval_batches)."""
    return ["dense", *variants(config, model)]


def lm_eval_outputs(config: dict, model: str) -> list[str]:
    """The zero-shot tables (lm-eval batches) holding the dense model and every cell."""
    return lines.lm_eval_outputs(config, model, lm_eval_variants(config, model))


def lm_eval_items(config: dict, model: str) -> list[str]:
    """The per-item correctness tables holding every cell's zero-shot evaluation (rule lm_eval's ``items``)."""
    return lines.lm_eval_outputs(config, model, variants(config, model), what="lm_eval_items")


def targets(config: dict) -> list[str]:
    per_model = lines.per_model(
        config, "tables/calibration-{model}.csv", "tables/calibration-paper-{model}.csv", "figures/calibration-heatmap-{model}.png"
    )
    return per_model + [f"{RESULTS}/tables/zeroshot.csv"]

"""The trade-off plane's claim (Kuzmin et al., "Pruning vs Quantization: Which is Better?"):
at equal size, quantisation beats pruning; decided on this run's trade-off table
(compbench.verdicts), with a paired bootstrap interval over the perplexity's evaluation
windows (compbench.verdicts.perplexity_interval). Which method is on the front at each
budget is read off the table and figure (docs/tradeoff.md)."""

from __future__ import annotations

from compbench import lines
from compbench.lines import RESULTS
from compbench.tradeoff.grid import dataset, plane
from compbench.verdicts import Claim, Outcome, perplexity_interval, untestable, with_summary

MIB = 2**20
PRUNED = ("pruning", "calibration_study")


def quantisation_beats_pruning(read, path: str, ds: str, windows=()) -> Outcome:
    """The best quantised variant of the dense model against the best pruned variant stored in
    no more bytes: its perplexity minus the quantised one's (> 0: quantisation wins). The
    interval is the paired bootstrap over windows of these two variants' difference; the
    two are picked on the run's own perplexities, so it does not count the choice."""
    t = read(path).dropna(subset=[f"perplexity_{ds}"])
    q = t[(t["line"] == "quant") & ~t["variant"].str.contains("-on-")]
    if not len(q):
        return untestable("no quantised variant of the dense model on the plane (quant section)")
    best_q = q.loc[q[f"perplexity_{ds}"].idxmin()]
    p = t[t["line"].isin(PRUNED) & (t["bytes"] <= best_q["bytes"])]
    if not len(p):
        return untestable(f"no pruned variant is stored in {best_q['bytes'] / MIB:.2f} MiB or less (add a higher sparsity)")
    best_p = p.loc[p[f"perplexity_{ds}"].idxmin()]
    qp, pp = float(best_q[f"perplexity_{ds}"]), float(best_p[f"perplexity_{ds}"])
    return with_summary(
        f"{best_q['variant']} {qp:.2f} ({best_q['bytes'] / MIB:.2f} MiB) vs {best_p['variant']} {pp:.2f} "
        f"({best_p['bytes'] / MIB:.2f} MiB) ({ds} perplexity)",
        pp - qp,
        perplexity_interval(read, windows, ds, best_p["variant"], best_q["variant"]),
    )


def claims(config: dict) -> list[Claim]:
    ds = dataset(config)
    out = []
    for m in config.get("models", {}):
        path = f"{RESULTS}/tables/tradeoff-{m}.csv"
        windows = tuple(lines.perplexity_outputs(config, m, list(plane(config, m)), what="windows"))
        out.append(
            Claim(
                id=f"tradeoff/quantisation-beats-pruning/{m}",
                line="tradeoff",
                paper="Kuzmin et al., 2023 (pruning vs quantization)",
                statement=f"At a stored size no larger, a quantised model beats every pruned one ({m}, post-training, {ds} perplexity)",
                anchor="in most cases quantization outperforms pruning; pruning only at very high compression",
                source="Kuzmin et al., NeurIPS 2023 (arXiv:2307.02973), abstract: 8 models, 3 tasks, with fine-tuning",
                link=f"{RESULTS}/figures/tradeoff-{m}.png",
                inputs=(path, *windows),
                evaluate=lambda read, path=path, windows=windows: quantisation_beats_pruning(read, path, ds, windows),
            )
        )
    return out

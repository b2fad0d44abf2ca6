"""The quant line's paper claims (GPTQ, AWQ: both beat round-to-nearest at the same bits),
decided on this run's quant table (compbench.verdicts), with a paired bootstrap interval
over the perplexity's evaluation windows (compbench.verdicts.perplexity_interval)."""

from __future__ import annotations

from compbench import lines
from compbench.lines import RESULTS
from compbench.quant.grid import name, settings, variants
from compbench.verdicts import Claim, Outcome, perplexity_interval, untestable, with_summary

PAPERS = {
    "gptq": (
        "GPTQ (Frantar et al., 2023)",
        "GPTQ (Frantar et al., arXiv:2210.17323), abstract: OPT and BLOOM up to 175B",
        "3-4-bit weights with negligible accuracy loss; more than doubles the compression gains of earlier one-shot methods",
    ),
    "awq": (
        "AWQ (Lin et al., 2024)",
        "AWQ (Lin et al., arXiv:2306.00978), abstract: LLaMA / Llama-2 / OPT",
        "outperforms existing work on language modelling and domain-specific benchmarks",
    ),
}


def _perplexity(t, variant: str):
    """(perplexity, data set) of a variant on the first evaluation data set, or None."""
    v = t[t["variant"] == variant].dropna(subset=["perplexity"]).sort_values("dataset")
    return (float(v["perplexity"].iloc[0]), str(v["dataset"].iloc[0])) if len(v) else None


def beats_rtn(read, path: str, method: str, bits: int, group: int, windows=()) -> Outcome:
    """Perplexity of the method's variant below round-to-nearest's at the same bits and group size
    (interval: paired bootstrap over the windows)."""
    t = read(path)
    mv, rv = name(method, bits, group), name("rtn", bits, group)
    m, r = _perplexity(t, mv), _perplexity(t, rv)
    if m is None or r is None:
        return untestable(f"the quant table lacks {mv} or {rv} (quant.methods)")
    noise = perplexity_interval(read, windows, m[1], rv, mv)
    return with_summary(
        f"RTN {r[0]:.2f} → {method.upper()} {m[0]:.2f} ({m[1]} perplexity, {bits} bits, groups of {group})", r[0] - m[0], noise
    )


def claims(config: dict) -> list[Claim]:
    bits, group = settings(config)[0]
    out = []
    for m in config.get("models", {}):
        path = f"{RESULTS}/tables/quant-{m}.csv"
        windows = tuple(lines.perplexity_outputs(config, m, list(variants(config, m)), what="windows"))
        for method, (paper, source, anchor) in PAPERS.items():
            out.append(
                Claim(
                    id=f"quant/{method}-beats-rtn/{m}",
                    line="quant",
                    paper=paper,
                    statement=f"{method.upper()} loses less perplexity than round-to-nearest at the same bits ({m}, {bits} bits, groups of {group})",
                    anchor=anchor,
                    source=source,
                    link=f"{RESULTS}/tables/quant-{m}.csv",
                    inputs=(path, *windows),
                    evaluate=lambda read, path=path, method=method, windows=windows: beats_rtn(read, path, method, bits, group, windows),
                )
            )
    return out

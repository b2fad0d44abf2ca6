"""The quant line's paper claims (GPTQ, AWQ: both beat round-to-nearest at the same bits),
decided on this run's quant table (compbench.verdicts)."""

from __future__ import annotations

from compbench.lines import RESULTS
from compbench.quant.grid import name, settings
from compbench.verdicts import Claim, Outcome, untestable

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


def beats_rtn(read, path: str, method: str, bits: int, group: int) -> Outcome:
    """Perplexity of the method's variant below round-to-nearest's at the same bits and group size."""
    t = read(path)
    m, r = _perplexity(t, name(method, bits, group)), _perplexity(t, name("rtn", bits, group))
    if m is None or r is None:
        return untestable(f"the quant table lacks {name(method, bits, group)} or {name('rtn', bits, group)} (quant.methods)")
    return Outcome(
        numbers=f"RTN {r[0]:.2f} → {method.upper()} {m[0]:.2f} ({m[1]} perplexity, {bits} bits, groups of {group})", diff=r[0] - m[0]
    )


def claims(config: dict) -> list[Claim]:
    bits, group = settings(config)[0]
    out = []
    for m in config.get("models", {}):
        path = f"{RESULTS}/tables/quant-{m}.csv"
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
                    inputs=(path,),
                    evaluate=lambda read, path=path, method=method: beats_rtn(read, path, method, bits, group),
                )
            )
    return out

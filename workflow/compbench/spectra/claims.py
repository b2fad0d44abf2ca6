"""The spectra line's paper claim, decided on this run's block α (compbench.verdicts)."""

from __future__ import annotations

from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable

# HT-SR's range of the power-law exponent for well-trained layers, the theory
# AlphaPruning builds its allocation on: α < 2 over-trained / very heavy-tailed,
# α > 6 under-trained (weak or no heavy tail).
WELL_TRAINED = (2.0, 6.0)


def heavy_tailed(read, path: str, rule: str) -> Outcome:
    """Every block's mean α under the default xmin rule inside [2, 6]; the difference
    is the margin to the nearer end (negative: some block outside)."""
    blocks = read(path)
    alpha = blocks[f"alpha_{rule}"].dropna()
    if alpha.empty:
        return untestable(f"no finite block alpha ({rule})")
    lo, hi = float(alpha.min()), float(alpha.max())
    margin = min(lo - WELL_TRAINED[0], WELL_TRAINED[1] - hi)
    return Outcome(numbers=f"block α ({rule}) {lo:.2f}–{hi:.2f} over {len(alpha)} blocks", diff=margin, strict=False)


def claims(config: dict) -> list[Claim]:
    rule = config["spectra"].get("default_rule", "peak")
    out = []
    for m in config.get("models", {}):
        path = f"{RESULTS}/spectra/{m}/blocks.csv"
        out.append(
            Claim(
                id=f"spectra/heavy-tailed/{m}",
                line="spectra",
                paper="AlphaPruning / HT-SR",
                statement=f"Training makes {m}'s decoder weights heavy-tailed: every block's mean α lies in HT-SR's well-trained range",
                anchor=f"{WELL_TRAINED[0]:g} ≤ α ≤ {WELL_TRAINED[1]:g}",
                source="Martin & Mahoney, JMLR 2021 (HT-SR), the metric of AlphaPruning (Lu et al., NeurIPS 2024) Eq. 1-2",
                link=f"{RESULTS}/figures/spectra-alpha-{m}.png",
                inputs=(path,),
                evaluate=lambda read, path=path: heavy_tailed(read, path, rule),
            )
        )
    return out

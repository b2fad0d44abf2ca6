"""The fusion line's paper claim (Pareto-set approximation by MoE model fusion),
decided on this run's fusion table (compbench.verdicts)."""

from __future__ import annotations

from compbench.fusion.grid import section
from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable


def beats_task_arithmetic(read, path: str) -> Outcome:
    """Hypervolume of the MoE-fusion front above task arithmetic's (same reference point)."""
    t = read(path).set_index("method")
    if not {"moe_fusion", "task_arithmetic"} <= set(t.index):
        return untestable("the fusion table lacks moe_fusion or task_arithmetic")
    moe, ta = float(t.loc["moe_fusion", "hypervolume"]), float(t.loc["task_arithmetic", "hypervolume"])
    ref = t.loc["moe_fusion", "reference"]
    return Outcome(numbers=f"hypervolume MoE fusion {moe:.3f} vs task arithmetic {ta:.3f} (reference {ref})", diff=moe - ta)


def claims(config: dict) -> list[Claim]:
    m = section(config)["model"]
    path = f"{RESULTS}/tables/fusion-{m}.csv"
    return [
        Claim(
            id=f"fusion/moe-beats-task-arithmetic/{m}",
            line="fusion",
            paper="Tang et al., 2024 (MoE model fusion)",
            statement=f"One MoE router approximates the Pareto front better than task arithmetic: larger hypervolume ({m}, two tasks)",
            anchor="the whole Pareto front from one router of hundreds of parameters (no number in the abstract)",
            source="Tang et al., arXiv:2406.09770, abstract: CLIP-ViT and GPT-2",
            link=f"{RESULTS}/figures/fusion-{m}.png",
            inputs=(path,),
            evaluate=lambda read: beats_task_arithmetic(read, path),
        )
    ]

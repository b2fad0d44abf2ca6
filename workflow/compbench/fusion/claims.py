"""The fusion line's paper claim (Pareto-set approximation by MoE model fusion),
decided on this run's fusion tables (compbench.verdicts): the hypervolume difference is
the mean over seeds, its 95 % interval t over >= 3 seeds, else a paired bootstrap over
the test items (compbench.fusion.summary)."""

from __future__ import annotations

from compbench.fusion.grid import points, section, tasks
from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable


def beats_task_arithmetic(read, path: str, points_path: str, names: list[str], reference) -> Outcome:
    """Hypervolume of the MoE-fusion front above task arithmetic's (same reference point)."""
    from compbench.fusion import summary

    t = read(path)
    if not {"moe_fusion", "task_arithmetic"} <= set(t["method"]):
        return untestable("the fusion table lacks moe_fusion or task_arithmetic")
    moe, ta = (float(t[t["method"] == m]["hypervolume"].astype(float).mean()) for m in ("moe_fusion", "task_arithmetic"))
    d = summary.difference(read(points_path), "moe_fusion", "task_arithmetic", names, reference)
    seeds = f"{d.n_seeds} seed{'s' if d.n_seeds != 1 else ''}"
    return Outcome(
        numbers=f"hypervolume MoE fusion {moe:.3f} vs task arithmetic {ta:.3f} (reference {list(reference)}, {seeds})",
        diff=d.mean,
        interval=d.interval,
        how=d.method,
    )


def claims(config: dict) -> list[Claim]:
    m = section(config)["model"]
    path, pts, names, ref = f"{RESULTS}/tables/fusion-{m}.csv", points(m), tasks(config), section(config)["hv_reference"]
    return [
        Claim(
            id=f"fusion/moe-beats-task-arithmetic/{m}",
            line="fusion",
            paper="Tang et al., 2024 (MoE model fusion)",
            statement=f"One MoE router approximates the Pareto front better than task arithmetic: larger hypervolume ({m}, two tasks)",
            anchor="the whole Pareto front from one router of hundreds of parameters (no number in the abstract)",
            source="Tang et al., arXiv:2406.09770, abstract: CLIP-ViT and GPT-2",
            link=f"{RESULTS}/figures/fusion-{m}.png",
            inputs=(path, pts),
            evaluate=lambda read: beats_task_arithmetic(read, path, pts, names, ref),
        )
    ]

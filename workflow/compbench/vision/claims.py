"""The PASS line's paper claim, decided on this run's PASS table and per-image results
(compbench.verdicts): the accuracy difference is the mean over seeds, its 95 % interval t over
>= 3 seeds, else a paired bootstrap over the test images (compbench.vision.summary)."""

from __future__ import annotations

from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable


def beats_l1(read, path: str, items_path: str, target: float) -> Outcome:
    """Test accuracy after fine-tuning: PASS minus L1-norm uniform channel pruning at the same MACs budget."""
    from compbench.vision import summary

    t = read(path)
    t = t[(t["metric"] == "accuracy") & (t["target"].astype(float).round(6) == round(target, 6))]
    if not {"pass", "l1_uniform"} <= set(t["method"]):
        return untestable(f"no pass / l1_uniform pair at MACs budget {target:g}")
    p, l1 = (float(t[t["method"] == m]["value"].astype(float).mean()) for m in ("pass", "l1_uniform"))
    d = summary.difference(read(items_path), ("pass", target), ("l1_uniform", target))
    return Outcome(
        numbers=f"accuracy L1-uniform {l1:.3f} → PASS {p:.3f} (MACs budget {target:g}, {d.n_seeds} seed{'s' if d.n_seeds != 1 else ''})",
        diff=d.mean,
        interval=d.interval,
        how=d.method,
    )


def claims(config: dict) -> list[Claim]:
    from compbench.vision.grid import ITEMS

    path = f"{RESULTS}/tables/pass.csv"
    return [
        Claim(
            id=f"vision/pass-beats-l1/{target:g}",
            line="vision",
            paper="PASS (prompt-driven structural sparsity)",
            statement=f"PASS's learned channel allocation beats uniform L1-norm pruning at equal MACs ({target:g} of dense, after fine-tuning)",
            anchor="higher accuracy than uniform pruning at equal FLOPs (no number taken from the paper here)",
            source="PASS paper (ResNet / VGG); no public code; compbench's reading in docs/vision.md",
            link=f"{RESULTS}/figures/pass-accuracy.png",
            inputs=(path, ITEMS),
            evaluate=lambda read, target=float(target): beats_l1(read, path, ITEMS, target),
        )
        for target in config["vision"]["pass"]["flops_targets"]
    ]

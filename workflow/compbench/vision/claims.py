"""The PASS line's paper claim, decided on this run's PASS table (compbench.verdicts)."""

from __future__ import annotations

from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable


def beats_l1(read, path: str, target: float) -> Outcome:
    """Test accuracy after fine-tuning: PASS minus L1-norm uniform channel pruning at the same MACs budget."""
    t = read(path)
    t = t[(t["metric"] == "accuracy") & (t["target"].astype(float).round(6) == round(target, 6))].set_index("method")["value"]
    if "pass" not in t or "l1_uniform" not in t:
        return untestable(f"no pass / l1_uniform pair at MACs budget {target:g}")
    p, l1 = float(t["pass"]), float(t["l1_uniform"])
    return Outcome(numbers=f"accuracy L1-uniform {l1:.3f} → PASS {p:.3f} (MACs budget {target:g})", diff=p - l1)


def claims(config: dict) -> list[Claim]:
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
            inputs=(path,),
            evaluate=lambda read, target=float(target): beats_l1(read, path, target),
        )
        for target in config["vision"]["pass"]["flops_targets"]
    ]

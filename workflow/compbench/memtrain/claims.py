"""The memory-efficient training line's paper claims (Q-GaLore), decided on this
run's memtrain table (compbench.verdicts)."""

from __future__ import annotations

from functools import partial

from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable

PAPER = "Q-GaLore (Zhang et al., 2024)"
SOURCE = "Q-GaLore (Zhang et al., 2024), abstract: fine-tuning (LLaMA-7B scale)"
BASELINES = ("lora", "galore")
MIB = 2**20
claim = partial(Claim, line="memtrain", paper=PAPER, source=SOURCE)  # every claim of this line


def _finetune(read, path: str):
    t = read(path)
    return t[t["regime"] == "finetune"]


def _value(t, variant: str, metric: str):
    v = t[(t["variant"] == variant) & (t["metric"] == metric)]["value"]
    return float(v.mean()) if len(v) else None


def less_memory(read, path: str) -> Outcome:
    """Exact training bytes of Q-GaLore below every baseline the run has (LoRA, GaLore)."""
    t = _finetune(read, path)
    q = _value(t, "qgalore", "bytes_total")
    base = {b: _value(t, b, "bytes_total") for b in BASELINES}
    base = {b: v for b, v in base.items() if v is not None}
    if q is None or not base:
        return untestable("the fine-tuning regime lacks qgalore or both of lora / galore")
    best = min(base.values())
    parts = ", ".join(f"{b} {v / MIB:.2f}" for b, v in base.items())
    return Outcome(numbers=f"qgalore {q / MIB:.2f} MiB vs {parts} MiB ({q / best - 1:+.0%} vs the smallest)", diff=best - q)


def matches_galore(read, path: str) -> Outcome:
    """Test perplexity of Q-GaLore no worse than GaLore's (same recipe)."""
    t = _finetune(read, path)
    q, g = _value(t, "qgalore", "test_perplexity"), _value(t, "galore", "test_perplexity")
    if q is None or g is None:
        return untestable("the fine-tuning regime lacks qgalore or galore")
    return Outcome(numbers=f"test perplexity qgalore {q:.2f} vs galore {g:.2f}", diff=g - q, strict=False)


def claims(config: dict) -> list[Claim]:
    path = f"{RESULTS}/tables/memtrain.csv"
    link = f"{RESULTS}/figures/memtrain-memory.png"
    return [
        claim(
            id="memtrain/qgalore-less-memory",
            statement="Q-GaLore fine-tunes with less memory than LoRA and GaLore (exact bytes of weights, gradients, optimizer state, projections)",
            anchor="up to 50 % less memory than LoRA / GaLore",
            link=link,
            inputs=(path,),
            evaluate=lambda read: less_memory(read, path),
        ),
        claim(
            id="memtrain/qgalore-matches-galore",
            statement="Q-GaLore's INT8 weights and INT4 projections cost no quality: test perplexity no worse than GaLore's",
            anchor="comparable performance to GaLore (no single number)",
            link=link,
            inputs=(path,),
            evaluate=lambda read: matches_galore(read, path),
        ),
    ]

"""The memory-efficient training line's paper claims (Q-GaLore), decided on this
run's memtrain table (compbench.verdicts)."""

from __future__ import annotations

from functools import partial

from compbench.lines import RESULTS
from compbench.memtrain.grid import finetune_models, regime_variants
from compbench.verdicts import Claim, Outcome, perplexity_interval, untestable, with_summary

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


def matches_galore(read, path: str, windows=()) -> Outcome:
    """Test perplexity of Q-GaLore no worse than GaLore's (same recipe). The interval is a
    paired bootstrap over the test windows (the jobs' windows.csv) when one model is
    fine-tuned; with several, the table's number is their mean and no interval is computed
    (``windows`` is then empty)."""
    t = _finetune(read, path)
    q, g = _value(t, "qgalore", "test_perplexity"), _value(t, "galore", "test_perplexity")
    if q is None or g is None:
        return untestable("the fine-tuning regime lacks qgalore or galore")
    noise = perplexity_interval(read, windows, "test", "galore", "qgalore")
    return with_summary(f"test perplexity qgalore {q:.2f} vs galore {g:.2f}", g - q, noise, strict=False)


def windows(config: dict) -> tuple[str, ...]:
    """The test windows of Q-GaLore and GaLore fine-tuned (rule memtrain_finetune), when the
    run fine-tunes exactly one model and both variants."""
    bases, names = finetune_models(config), regime_variants(config, "finetune")
    if len(bases) != 1 or not {"qgalore", "galore"} <= set(names):
        return ()
    return tuple(f"{RESULTS}/memtrain/finetune/{bases[0]}/{v}/windows.csv" for v in ("galore", "qgalore"))


def claims(config: dict) -> list[Claim]:
    path = f"{RESULTS}/tables/memtrain.csv"
    link = f"{RESULTS}/figures/memtrain-memory.png"
    test_windows = windows(config)
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
            inputs=(path, *test_windows),
            evaluate=lambda read: matches_galore(read, path, test_windows),
        ),
    ]

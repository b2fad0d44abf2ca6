"""The low-rank line's paper claims (WeLore), decided on this run's lowrank table
(compbench.verdicts), with a paired bootstrap interval over the perplexity's evaluation
windows (compbench.verdicts.perplexity_interval)."""

from __future__ import annotations

from functools import partial

from compbench import lines
from compbench.lines import RESULTS
from compbench.lowrank import grid
from compbench.verdicts import Claim, Outcome, perplexity_interval, untestable, with_summary

PAPER = "WeLore (Jaiswal et al., 2024)"
SOURCE = "WeLore (Jaiswal et al., arXiv:2407.11239), abstract: 50 % compressed LLaMA-2-7B"
claim = partial(Claim, line="lowrank", paper=PAPER, source=SOURCE)  # every claim of this line


def _perplexity(t, variant: str):
    """(perplexity, data set) of a variant on the first evaluation data set, or None."""
    v = t[(t["variant"] == variant) & (t["metric"] == "perplexity")].sort_values("dataset")
    return (float(v["value"].iloc[0]), str(v["dataset"].iloc[0])) if len(v) else None


def beats_uniform(read, path: str, ratio: float, windows=()) -> Outcome:
    """Perplexity of WeLore's non-uniform rank reduction below uniform's at the same reduction
    (interval: paired bootstrap over the windows)."""
    t = read(path)
    wv, uv = f"lowrank-welore-{ratio}", f"lowrank-uniform-{ratio}"
    w, u = _perplexity(t, wv), _perplexity(t, uv)
    if w is None or u is None:
        return untestable(f"no welore/uniform pair at rank reduction {ratio}")
    noise = perplexity_interval(read, windows, w[1], uv, wv)
    return with_summary(f"uniform {u[0]:.2f} → WeLore {w[0]:.2f} ({w[1]} perplexity, rank reduction {ratio})", u[0] - w[0], noise)


def lrc_matches_full(read, path: str, ratio: float, windows=()) -> Outcome:
    """Fine-tuning only the low-rank components reaches full fine-tuning's perplexity (same token
    budget; interval: paired bootstrap over the windows)."""
    t = read(path)
    lv, fv = f"lowrank-welore-{ratio}-ft-lrc", f"lowrank-welore-{ratio}-ft-full"
    lrc, full = _perplexity(t, lv), _perplexity(t, fv)
    if lrc is None or full is None:
        return untestable(f"no WeLore {ratio} run fine-tuned in both the lrc and the full mode")
    noise = perplexity_interval(read, windows, lrc[1], fv, lv)
    return with_summary(
        f"full {full[0]:.2f} vs LRC-only {lrc[0]:.2f} ({lrc[1]} perplexity, WeLore {ratio})", full[0] - lrc[0], noise, strict=False
    )


def claims(config: dict) -> list[Claim]:
    lr = config["lowrank"]
    ratio = max(lr["ratios"], key=float)  # as written in the config: the variant names use it
    ft = lr.get("finetune") or {}
    ft_ratio = max(ft.get("ratios", []), key=float, default=ratio)
    out = []
    for m in config.get("models", {}):
        path = f"{RESULTS}/tables/lowrank-{m}.csv"
        windows = tuple(lines.perplexity_outputs(config, m, list(grid.variants(config, m)), what="windows"))
        out += [
            claim(
                id=f"lowrank/welore-beats-uniform/{m}",
                statement=f"WeLore's non-uniform rank reduction loses less perplexity than uniform reduction ({m}, reduction {ratio:g})",
                anchor="non-uniform beats uniform reduction (a finding; no single number in the abstract)",
                link=f"{RESULTS}/figures/lowrank-{m}.png",
                inputs=(path, *windows),
                evaluate=lambda read, path=path, windows=windows: beats_uniform(read, path, ratio, windows),
            ),
            claim(
                id=f"lowrank/lrc-matches-full/{m}",
                statement=f"Fine-tuning only the low-rank components matches full fine-tuning ({m}, WeLore {ft_ratio:g})",
                anchor="LRC-only outperforms full fine-tuning with ~3x throughput and ~0.6x GPU memory",
                link=f"{RESULTS}/figures/lowrank-finetune-{m}.png",
                inputs=(path, *windows),
                evaluate=lambda read, path=path, windows=windows: lrc_matches_full(read, path, ft_ratio, windows),
            ),
        ]
    return out

"""The report's front page: every paper claim of the active lines, the paper's
anchor number, this run's number(s) and a verdict computed from the result tables.

Each research line states its claims in ``<line>/claims.py`` (torch-free):
``claims(config) -> list[Claim]``. A claim names the result files it reads
(``inputs``, the rule ``verdicts``'s inputs), the report item its row links to
(``link``) and an ``evaluate(read)`` that returns an :class:`Outcome` from those
tables (``read(path) -> DataFrame``). The verdict word is never written by hand:
it is :func:`verdict` of the outcome's difference, oriented so that a positive
difference supports the claim.

A claim passes a 95 % interval of its difference where the run gives one
(:mod:`compbench.stats`: t over >= 3 seeds, else a paired bootstrap over the test
items), and :func:`verdict` says "within noise" when the interval covers 0.
Without an interval the verdict is the sign of the difference, and the front page
says that no interval was computed. A claim tested against a null distribution
instead (compose's order sensitivity, a sign-flip permutation test) passes the
observed value minus the null's one-sided 95 % range as its interval, so that it
holds iff the value exceeds the null's 95th percentile.

The test items of a perplexity are its evaluation windows: the rule ``perplexity``
writes each variant's per-window NLL sums and token counts, and
:func:`perplexity_interval` bootstraps two variants' perplexity difference over the
windows they share (a resample's perplexity is exp(sum NLL / sum tokens) of the drawn
windows). Zero-shot accuracies resample their items (lm-eval's per-sample
correctness, :func:`accuracy_items`).
"""

from __future__ import annotations

import io
import math
import os
import platform
from dataclasses import dataclass, field
from typing import Callable

HOLDS = "holds"
FAILS = "does not hold"
NOISE = "within noise"
UNTESTABLE = "not testable here"
WORDS = (HOLDS, FAILS, NOISE, UNTESTABLE)


def verdict(diff: float | None, interval: tuple[float, float] | None = None, strict: bool = True) -> str:
    """The verdict on a claim from its oriented difference (> 0: the claim's direction).

    ``interval`` is a 95 % interval (lo, hi) of that difference (compbench.stats):
    above 0 -> holds, below 0 -> does not hold, covering 0 -> within noise.
    Without one, the sign decides; ``strict=False`` counts a difference of exactly
    0 as holding (claims of parity, "on par or better"). ``None`` or NaN: the run
    has no number for the claim -> not testable here."""
    if diff is None or (isinstance(diff, float) and math.isnan(diff)):
        return UNTESTABLE
    if interval is not None:
        lo, hi = (float(x) for x in interval)
        if not lo <= hi:
            raise ValueError(f"interval {interval!r}: expected (lo, hi) with lo <= hi")
        if lo > 0 or (not strict and lo >= 0):
            return HOLDS
        if hi < 0:
            return FAILS
        return NOISE
    return HOLDS if diff > 0 or (not strict and diff == 0) else FAILS


@dataclass(frozen=True)
class Outcome:
    """What a run says about one claim."""

    numbers: str  # this run's number(s), as printed on the front page
    diff: float | None  # oriented difference (> 0 supports the claim); None: not testable
    interval: tuple[float, float] | None = None  # a 95 % interval of diff (compbench.stats)
    strict: bool = True  # False: a difference of exactly 0 holds (parity claims)
    why: str = ""  # for "not testable here": what the run lacks
    how: str = ""  # how the interval was computed (e.g. "t over 3 seeds")

    @property
    def verdict(self) -> str:
        return verdict(self.diff, self.interval, self.strict)

    @property
    def noise(self) -> str:
        if self.diff is None or (isinstance(self.diff, float) and math.isnan(self.diff)):
            return "–"
        if self.interval is None:
            return "one run, no interval"
        lo, hi = self.interval
        return f"interval [{lo:.3g}, {hi:.3g}]" + (f", {self.how}" if self.how else "")


def untestable(why: str) -> Outcome:
    return Outcome(numbers="–", diff=None, why=why)


def with_summary(numbers: str, diff: float, summary=None, strict: bool = True) -> Outcome:
    """An outcome whose interval (if any) comes from a :class:`compbench.stats.Summary`."""
    if summary is None or summary.interval is None:
        return Outcome(numbers=numbers, diff=diff, strict=strict)
    return Outcome(numbers=numbers, diff=diff, interval=summary.interval, strict=strict, how=summary.method)


def accuracy_items(read, paths, metric: str = "acc") -> dict:
    """(variant, task) -> per-item correctness (bool array, items in lm-eval's ``doc_id`` order)
    from the rule ``lm_eval``'s item tables ``paths`` (``lm_eval_items-<batch>.csv``, any number of variants each,
    :func:`compbench.zeroshot.items`)."""
    from compbench import stats

    out = {}
    for p in paths:
        t = read(p)
        for r in t[t["metric"] == metric].itertuples():
            out[(r.variant, r.dataset)] = stats.unbits(r.correct)
    return out


def accuracy_interval(items: dict, variants, point: float, contrast: Callable):
    """The :class:`compbench.stats.Summary` of a contrast of zero-shot accuracies: a paired
    percentile bootstrap over each task's items (the same draw for every variant).
    ``contrast(acc)`` gets ``acc[variant]``, the resampled accuracies (%, mean over the
    tasks, as the tables average them) and returns the ``n_boot`` resampled contrasts;
    ``point`` is the run's own value. None when a variant lacks a task's items or the
    variants differ in a task's item count."""
    import numpy as np

    from compbench import stats

    variants = list(dict.fromkeys(variants))
    tasks = sorted({t for v, t in items if v in variants})
    if not variants or not tasks or any((v, t) not in items for v in variants for t in tasks):
        return None
    sizes = [len(items[(variants[0], t)]) for t in tasks]
    if any(len(items[(v, t)]) != n for v in variants for t, n in zip(tasks, sizes)) or not all(sizes):
        return None

    def stat(idx):
        acc = {v: 100 * np.mean([items[(v, t)][i].mean(-1) for t, i in zip(tasks, idx)], axis=0) for v in variants}
        return contrast(acc)

    return stats.summarise([point], stat, sizes, what="test items per task")


def perplexity_interval(read, paths, dataset: str, high: str, low: str):
    """The :class:`compbench.stats.Summary` of perplexity(``high``) − perplexity(``low``) on
    ``dataset``: a paired percentile bootstrap over the evaluation windows both variants
    share, from the window tables ``paths`` (rule ``perplexity``'s ``windows-*.csv``; one
    row per (variant, dataset, window): ``nll`` sum and ``tokens``). A resample's
    perplexity is exp(sum NLL / sum tokens) of its drawn windows, the same draw for both
    variants. None when either variant has no windows or they differ in windows (e.g.
    other tokenizers)."""
    import math

    import numpy as np
    import pandas as pd

    from compbench import stats

    frames = [f for f in (read(p) for p in paths) if len(f)]
    if not frames:
        return None
    w = pd.concat(frames, ignore_index=True)
    w = w[w["dataset"] == dataset]
    a, b = (w[w["variant"] == v].sort_values("window") for v in (high, low))
    if a.empty or b.empty or len(a) != len(b) or not np.array_equal(a["window"].to_numpy(), b["window"].to_numpy()):
        return None
    if not np.array_equal(a["tokens"].to_numpy(), b["tokens"].to_numpy()):
        return None
    tokens = a["tokens"].to_numpy(dtype=float)
    ra = stats.seed_mean_ratio(a["nll"].to_numpy(dtype=float), tokens)
    rb = stats.seed_mean_ratio(b["nll"].to_numpy(dtype=float), tokens)
    ppl = [math.exp(math.fsum(v["nll"]) / float(tokens.sum())) for v in (a, b)]
    return stats.summarise([ppl[0] - ppl[1]], lambda idx: np.exp(ra(idx)) - np.exp(rb(idx)), len(a), what="windows")


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, checked on this run's tables."""

    id: str  # unique, e.g. "pruning/alpha-beats-uniform/wanda"
    line: str  # the research line (compbench.lines name)
    paper: str  # short citation
    statement: str  # the claim, in one sentence
    anchor: str  # the paper's number(s) for it
    source: str  # where the anchor is: paper, table/section, model, data
    link: str  # the report item (a result file) the row links to
    inputs: tuple[str, ...]  # result files that evaluate reads
    evaluate: Callable[[Callable], Outcome] = field(compare=False, repr=False)


def collect(config: dict) -> list[Claim]:
    """Every claim of the config's active lines, in the lines' order."""
    from compbench import lines

    out = lines.claims(config)
    ids = [c.id for c in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"claim ids must be unique; repeated: {dup}")
    return out


def inputs(config: dict) -> list[str]:
    return list(dict.fromkeys(p for c in collect(config) for p in c.inputs))


def evaluate(claims: list[Claim], read: Callable) -> list[dict]:
    """One row per claim: the claim, the paper's anchor, this run's numbers, the verdict."""
    rows = []
    for c in claims:
        o = c.evaluate(read)
        rows.append(
            {
                "id": c.id,
                "line": c.line,
                "paper": c.paper,
                "claim": c.statement,
                "anchor": c.anchor,
                "source": c.source,
                "this_run": o.numbers if o.diff is not None else f"– ({o.why})" if o.why else "–",
                "difference": o.diff,
                "interval_lo": o.interval[0] if o.interval else None,
                "interval_hi": o.interval[1] if o.interval else None,
                "interval_method": o.how if o.interval else "",
                "noise": o.noise,
                "verdict": o.verdict,
                "link": c.link,
            }
        )
    return rows


# ---------------------------------------------------------------- the front page (reStructuredText)
def _cell(text) -> str:
    """A list-table cell: one line, with the characters reStructuredText treats as markup escaped."""
    s = " ".join(str(text).split())
    for ch in "\\*`_|":
        s = s.replace(ch, "\\" + ch)
    return s or "–"


def front_page(rows: list[dict], meta: dict) -> str:
    """The generated part of the report's front page: the run (config, models,
    machine, date) and the verdict table, each row linking to its report item
    by the target Snakemake defines for every result file (its basename)."""
    out = [
        "Run",
        "---",
        "",
        *(f":{k}: {_cell(v)}" for k, v in meta.items()),
        "",
        "Verdicts",
        "--------",
        "",
        "Each paper claim of this config's research lines, the paper's own number for it, this run's numbers and "
        "the verdict computed from the result tables by the rule ``verdicts`` (never written by hand; also "
        "``results/tables/verdicts.csv``). Where the run gives a 95 % interval of the difference in the claim's "
        "direction (t over >= 3 seeds, else a paired bootstrap over the test items; the noise column says which), "
        "*holds* means the interval lies above 0, *does not hold* below 0, *within noise* that it covers 0. "
        "Without an interval (one seed, no per-item results) the verdict is the sign of the difference, and a small "
        "difference either way is not evidence. *not testable here*: the config does not run what the claim needs.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :class: verdicts",
        "",
        "   * - line",
        "     - claim",
        "     - the paper's number (source)",
        "     - this run",
        "     - verdict (noise)",
        "     - see",
    ]
    for r in rows:
        link = r["link"].rsplit("/", 1)[-1]
        out += [
            f"   * - {_cell(r['line'])}",
            f"     - {_cell(r['claim'])}",
            f"     - {_cell(r['anchor'])} ({_cell(r['source'])})",
            f"     - {_cell(r['this_run'])}",
            f"     - **{_cell(r['verdict'])}** ({_cell(r['noise'])})",
            f"     - `{link}`_",
        ]
    return "\n".join(out) + "\n"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; else platform.processor())."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_model(name: str, spec: dict, tiny: dict | None = None) -> str:
    if spec.get("source") == "tiny":
        tiny = tiny or {}
        dims = f", hidden {tiny['hidden_size']}, {tiny['num_layers']} layers" if {"hidden_size", "num_layers"} <= set(tiny) else ""
        return f"{name} (tiny LLaMA pretrained by the workflow{dims})"
    return f"{name} ({spec.get('source')}: {spec.get('id', '?')})"


def run_meta(configfiles, models: dict, tiny: dict | None, devices, date: str) -> dict:
    """The front page's run fields: config, models, machine, date."""
    return {
        "config": ", ".join(configfiles),
        "models": "; ".join(describe_model(m, spec, tiny) for m, spec in models.items()) or "none",
        "machine": f"{platform.system()} {platform.machine()}, {cpu_model()}, {os.cpu_count()} cores"
        + (f"; jobs ran on {', '.join(sorted(devices))}" if devices else ""),
        "date": date,
    }


def rst_problems(text: str) -> list[str]:
    """docutils' warnings and errors for a reStructuredText text (empty: clean).
    The report renders captions and the front page with docutils, which prints a
    'System Message' box into the page for each of these."""
    from docutils.core import publish_parts

    stream = io.StringIO()
    publish_parts(text, writer="html", settings_overrides={"warning_stream": stream, "report_level": 2, "halt_level": 5})
    return [line for line in stream.getvalue().splitlines() if line.strip()]


def report_links(categories, files) -> str:
    """The link targets Snakemake appends to every caption and to the front page
    (snakemake/report/__init__.py, ``rst_links``), for checking texts that use them."""
    out = ["", ".. _Workflow: javascript:show_panel('workflow')", ".. _Statistics: javascript:show_panel('statistics')"]
    out += [f".. _{c}: javascript:app.showCategory('{c}')" for c in categories]
    out += [f".. _{f}: javascript:app.showResultInfo('{f}')" for f in files]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- report flags (rules/report.smk)


def report_flag(rules, path: str):
    """The ``report(...)`` flag (caption, category) of the rule output that produces
    ``path``, so that a table's HTML view (rule ``table_html``) shows under the CSV's category and caption."""
    from snakemake.io import get_flag_value, is_flagged

    for rule in rules:
        for out in rule.output:
            if is_flagged(out, "report") and out.match(path):
                return get_flag_value(out, "report")
    raise ValueError(f"no rule marks {path} for the report (report(...) on its output)")


def caption_text(rules, path: str, config: dict) -> str:
    """The caption of the rule output that produces ``path``, rendered as Snakemake
    renders captions (Jinja2 with ``snakemake.wildcards`` / ``snakemake.config``)."""
    from types import SimpleNamespace

    import jinja2
    from snakemake.io import get_flag_value, is_flagged

    for rule in rules:
        for out in rule.output:
            match = is_flagged(out, "report") and out.match(path)
            if match:
                cap = get_flag_value(out, "report").caption
                if cap is None:
                    return ""
                with open(cap.get_path_or_uri(secret_free=True) if hasattr(cap, "get_path_or_uri") else str(cap), encoding="utf-8") as f:
                    text = f.read()
                snakemake = SimpleNamespace(wildcards=SimpleNamespace(**match.groupdict()), config=config)
                return jinja2.Template(text).render(snakemake=snakemake)
    raise ValueError(f"no rule marks {path} for the report (report(...) on its output)")

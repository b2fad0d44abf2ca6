"""The research lines: one subpackage each, one registry line each here.

A line is active when its config section is present. Its subpackage has

* ``grid.py`` (torch-free): ``targets(config)``, the final files of the line, and
  optionally ``variants(config, model)``, the model variants it adds to the
  evaluation (name -> artifact directory);
* ``check.py``: ``check(config)``, cross-field checks beyond the JSON schema,
  raising :class:`compbench.config.ConfigError`;
* ``claims.py`` (torch-free): ``claims(config)``, the papers' claims this config
  tests, with their anchors and how the result tables decide them
  (:mod:`compbench.verdicts`, the report's front page).

The Snakefile asks this module for `rule all`'s inputs, each line's target rule
and the variants every evaluation covers; nothing depends on the order in
which rule files are included. Variant kinds (how a stored variant is loaded)
are named here by module, so the core's variant loader imports a line only
when it meets one of its variants.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field

from compbench import sources

RESULTS = sources.RESULTS  # one definition, in the torch-free sources module


@dataclass(frozen=True)
class Line:
    name: str  # target rule (`snakemake <name>`) and docs page docs/<name>.md
    package: str  # subpackage of compbench
    section: tuple[str, ...]  # config path of its section
    variant_kinds: dict[str, str] = field(default_factory=dict)  # variant kind -> module registering it

    def active(self, config: dict) -> bool:
        node = config
        for k in self.section:
            if not isinstance(node, dict) or k not in node or node[k] is None:
                return False
            node = node[k]
        return True

    def module(self, name: str):
        return importlib.import_module(f"compbench.{self.package}.{name}")

    @property
    def grid(self):
        return self.module("grid")


LINES: dict[str, Line] = {
    line.name: line
    for line in [
        Line("spectra", "spectra", ("spectra",)),
        Line("pruning", "prune", ("pruning",), {"masked": "compbench.prune.masked"}),
        Line("calibration_study", "calibration_study", ("calibration_study",), {"masked": "compbench.prune.masked"}),
        Line("lowrank", "lowrank", ("lowrank",), {"lowrank": "compbench.lowrank.compress"}),
        Line("quant", "quant", ("quant",), {"quant": "compbench.quant.variant"}),
        Line("memtrain", "memtrain", ("memtrain",), {"trained": "compbench.memtrain.variant"}),
        Line("compose", "compose", ("compose",)),
        Line("speech", "speech", ("speech",)),
        Line("vision", "vision", ("vision", "pass")),
        Line("fusion", "fusion", ("vision", "fusion")),
        Line("tradeoff", "tradeoff", ("tradeoff",)),
    ]
}


def active(config: dict) -> list[Line]:
    return [line for line in LINES.values() if line.active(config)]


def kind_module(kind: str) -> str | None:
    """The module that registers a variant kind (None: unknown to every line)."""
    for line in LINES.values():
        if kind in line.variant_kinds:
            return line.variant_kinds[kind]
    return None


def per_model(config: dict, *patterns: str) -> list[str]:
    """Every pattern (``{model}`` placeholder, relative to the results folder) for every model of the config."""
    return [f"{RESULTS}/{p.format(model=m)}" for m in config.get("models", {}) for p in patterns]


def variants(config: dict, model: str) -> dict[str, str]:
    """Every variant of ``model`` that the evaluation covers: the dense model and
    what each active line adds (name -> directory)."""
    out = {"dense": sources.model_dir(config, model)}
    for line in active(config):
        fn = getattr(line.grid, "variants", None)
        if fn is not None:
            for name, path in fn(config, model).items():
                if name in out and out[name] != path:
                    raise ValueError(f"variant {name!r} of model {model!r} is claimed by two lines")
                out[name] = path
    return out


def variant_line(config: dict, model: str, variant: str) -> Line | None:
    """The line that adds ``variant`` (None for the dense model)."""
    for line in active(config):
        fn = getattr(line.grid, "variants", None)
        if fn is not None and variant in fn(config, model):
            return line
    return None


# Perplexity data sets read from the workflow's own corpus (its test split), not from a hub.
CORPUS_DATASETS = ("tiny", "natural")


def corpus_sources(config: dict, dataset: str) -> list[str]:
    """The corpus sources a perplexity evaluation on ``dataset`` reads (its params): the
    config's corpus sources for a corpus data set, none for a hub data set."""
    return list(config["corpus"]["sources"]) if dataset in CORPUS_DATASETS else []


def evaluation_settings(config: dict, dataset: str | None = None) -> dict:
    """The keys of evaluation.perplexity an evaluation on ``dataset`` reads (None: any
    data set, e.g. a training job's test perplexity on its own text): a job's params
    hold only these, so a key it does not read (c4_documents when c4 is not
    evaluated) reruns nothing."""
    ev = config["evaluation"]["perplexity"]
    out = {k: ev[k] for k in ("batch_size", "max_windows") if k in ev}
    if dataset == "c4":
        out["c4_documents"] = ev["c4_documents"]
    return out


def _line_groups(config: dict, model: str) -> dict[str, dict[str, str]]:
    """Every variant of a model (name -> directory) grouped by the line that adds it
    (:func:`variant_line`); the dense model is group ``dense``."""
    seen = {"dense": sources.model_dir(config, model)}
    by_line: dict[str, dict[str, str]] = {"dense": dict(seen)}
    for line in active(config):  # as variants() and variant_line(): the first line claiming a variant holds it
        fn = getattr(line.grid, "variants", None)
        for name, path in (fn(config, model) if fn is not None else {}).items():
            if name in seen:
                if seen[name] != path:
                    raise ValueError(f"variant {name!r} of model {model!r} is claimed by two lines")
                continue
            seen[name] = path
            by_line.setdefault(line.name, {})[name] = path
    return by_line


def _chunked(groups: dict[str, dict[str, str]], per_job: int | None) -> dict[str, dict[str, str]]:
    """Each group as one batch named like it, or ``<group>-<i>`` (i = 1, 2, ...) batches
    of at most ``per_job`` variants."""
    out: dict[str, dict[str, str]] = {}
    for group, members in groups.items():
        names = list(members)
        if not per_job or len(names) <= per_job:
            out[group] = members
            continue
        for i in range(0, len(names), per_job):
            out[f"{group}-{i // per_job + 1}"] = {n: members[n] for n in names[i : i + per_job]}
    return out


def perplexity_batches(config: dict, model: str) -> dict[str, dict[str, str]]:
    """The perplexity jobs of a model: batch name -> {variant: directory}, one batch per
    data set each (rule ``perplexity``). The dense model is batch ``dense``; every other
    variant is in the batch of the line that adds it (:func:`variant_line`), named like
    the line, or ``<line>-<i>`` (i = 1, 2, ...) when the line has more variants than
    ``evaluation.perplexity.variants_per_job``. One job evaluates its batch's variants one
    after the other and pays the start-up (imports, model code) once; a content-addressed
    cache (:mod:`compbench.resultcache`) keeps a variant whose inputs, settings and code
    did not change from being recomputed when its batch reruns."""
    return _chunked(_line_groups(config, model), config["evaluation"]["perplexity"].get("variants_per_job"))


def lm_eval_batches(config: dict, model: str) -> dict[str, dict[str, str]]:
    """The zero-shot (lm-eval) jobs of a model, batched as :func:`perplexity_batches` (by
    line, at most ``calibration_study.lm_eval.variants_per_job`` variants a job), over the
    variants some active line evaluates zero-shot (its grid's ``lm_eval_variants``: the
    calibration study's cells and the dense model, the trade-off plane with
    ``tradeoff.zeroshot``). lm-eval's import and task building, ~4 s a job here, are paid
    once a batch; the result cache keeps unchanged variants from being recomputed."""
    wanted: set[str] = set()
    for line in active(config):
        fn = getattr(line.grid, "lm_eval_variants", None)
        if fn is not None:
            wanted |= set(fn(config, model))
    groups = {g: {n: p for n, p in members.items() if n in wanted} for g, members in _line_groups(config, model).items()}
    missing = wanted - {n for members in groups.values() for n in members}
    if missing:
        raise ValueError(f"zero-shot evaluation of {sorted(missing)} of model {model!r}: no line adds these variants")
    per_job = (config.get("calibration_study") or {}).get("lm_eval", {}).get("variants_per_job")
    return _chunked({g: m for g, m in groups.items() if m}, per_job)


def lm_eval_batch(config: dict, model: str, batch: str) -> dict[str, str]:
    """The variants (name -> directory) of one lm-eval batch; an unknown batch fails naming the known ones."""
    batches = lm_eval_batches(config, model)
    if batch not in batches:
        raise ValueError(f"unknown lm-eval batch {batch!r} of model {model!r}; allowed: {', '.join(batches) or '(none)'}")
    return batches[batch]


def lm_eval_outputs(config: dict, model: str, names, what: str = "lm_eval") -> list[str]:
    """The zero-shot tables holding the given variants of a model: one per lm-eval batch
    (:func:`lm_eval_batches`), one row per (variant, task, metric); ``what="lm_eval_items"``:
    the batches' per-item tables (:func:`compbench.zeroshot.items`). A table may hold more
    variants than asked for: select rows by ``variant``."""
    if what not in ("lm_eval", "lm_eval_items"):
        raise ValueError(f"lm_eval_outputs: what={what!r}; allowed: 'lm_eval', 'lm_eval_items'")
    wanted = set(names)
    return [f"{RESULTS}/eval/{model}/{what}-{b}.csv" for b, members in lm_eval_batches(config, model).items() if wanted & set(members)]


def perplexity_batch(config: dict, model: str, batch: str) -> dict[str, str]:
    """The variants (name -> directory) of one perplexity batch; an unknown batch fails naming the known ones."""
    batches = perplexity_batches(config, model)
    if batch not in batches:
        raise ValueError(f"unknown perplexity batch {batch!r} of model {model!r}; allowed: {', '.join(batches)}")
    return batches[batch]


def perplexity_batch_line(batch: str) -> Line | None:
    """The line whose variants a perplexity or lm-eval batch holds (None: the dense model's batch)."""
    return LINES.get(re.sub(r"-\d+$", "", batch))


def perplexity_outputs(config: dict, model: str | None = None, names=None, what: str = "perplexity") -> list[str]:
    """The perplexity tables holding the given variants (default: every variant) of a model
    (default: every model), on every data set: one table per batch (:func:`perplexity_batches`),
    one row per (variant, metric). A table may hold more variants than asked for: select
    rows by ``variant``. ``what="windows"``: the batches' window tables instead (one row per
    (variant, window): NLL sum and token count, :mod:`compbench.perplexity_batch`)."""
    if what not in ("perplexity", "windows"):
        raise ValueError(f"perplexity_outputs: what={what!r}; allowed: 'perplexity', 'windows'")
    out = []
    for m in [model] if model else list(config.get("models", {})):
        batches = perplexity_batches(config, m)
        wanted = set(names) if names is not None else None
        for b, members in batches.items():
            if wanted is None or wanted & set(members):
                for d in config["evaluation"]["perplexity"]["datasets"]:
                    out.append(f"{RESULTS}/eval/{m}/{what}-{b}-{d}.csv")
    return out


def core_targets(config: dict) -> list[str]:
    """What the spine produces whatever the lines: the perplexity table of every
    variant and the pretraining curves of the tiny models."""
    models = config.get("models", {})
    out = [f"{RESULTS}/tables/perplexity.csv", f"{RESULTS}/figures/perplexity.png"] if models else []
    out += [f"{RESULTS}/figures/pretrain-{m}.png" for m, spec in models.items() if spec["source"] == "tiny"]
    return out


def result_targets(config: dict) -> list[str]:
    """Final files of the core and of every active line."""
    out = core_targets(config)
    for line in active(config):
        out += line.grid.targets(config)
    return list(dict.fromkeys(out))


def targets(config: dict, name: str | None = None) -> list[str]:
    """Final files of one line (by name), or of everything (`rule all`: the core's,
    every active line's, and the report's own files)."""
    if name is not None:
        line = LINES[name]
        return line.grid.targets(config) if line.active(config) else []
    return result_targets(config) + report_targets(config)


def claims(config: dict) -> list:
    """Every active line's paper claims (``<line>/claims.py``), for the report's verdict table."""
    return [c for line in active(config) for c in line.module("claims").claims(config)]


def report_targets(config: dict) -> list[str]:
    """The report's own files: the verdict table (and the front page generated from it) and a
    sortable HTML view of every result table of the config (rules/report.smk)."""
    tables = [t for t in result_targets(config) if t.startswith(f"{RESULTS}/tables/") and t.endswith(".csv")]
    tables.append(f"{RESULTS}/tables/verdicts.csv")
    return [f"{RESULTS}/report/front.rst", *tables[-1:]] + [t[: -len(".csv")] + ".html" for t in tables]


def check(config: dict) -> None:
    """Every active line's own config checks."""
    for line in active(config):
        line.module("check").check(config)

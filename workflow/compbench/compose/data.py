"""The data of the composability study (:class:`compbench.compose.interventions.registry.StudyData`),
from one of two sources behind one interface (registry :data:`SOURCES`):

* ``world`` (embedded default, offline): the generated knowledge world that the
  tiny model learned in pretraining (:mod:`compbench.knowledge`), its edits,
  locality probes, hazardous-topic forget set and both multiple-choice tests;
  retain texts are the pretraining corpus's general text.
* ``facts`` (a real pretrained model, offline): well-known real-world facts that
  the dense model demonstrably knows (:mod:`compbench.compose.facts`, checked on
  the model in this job), chemistry as the unlearning topic; retain texts as ``world``.
* ``hf`` (real runs): zsRE or CounterFact edits, WMDP multiple choice with its
  forget / retain corpora, and MMLU as the utility test, by Hugging Face id or
  local path (JSON / JSONL), each named in the config. A source that cannot be
  reached fails with its name and the error.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from compbench.compose.interventions.registry import MCQ, EditRequest, Probe, StudyData
from compbench.knowledge import PEOPLE, World, prompt_of
from compbench.registry import Registry

SOURCES: Registry = Registry("composability data source")


def _mcq(world: World, fact, template: int, rng: random.Random, k: int = 4) -> MCQ:
    values, templates = world.relations(fact.hazardous)[fact.relation]
    wrong = rng.sample([v for v in values if v != fact.value], k - 1)
    choices = wrong + [fact.value]
    rng.shuffle(choices)
    return MCQ(prompt_of(templates[template % len(templates)], fact.subject), tuple(choices), choices.index(fact.value))


def needs_model(spec: dict) -> bool:
    """Whether the source reads the model (the rule then makes the model an input)."""
    return getattr(SOURCES.get(spec["source"]), "needs_model", False)


def world_study(world: World, n_edits: int, n_locality: int, seed: int = 0) -> dict:
    """Edit requests, locality probes, the forget set and both multiple-choice tests.

    People are split three ways: the first ``n_edits`` (one edit each, a random
    attribute rewritten to another value), the next ``n_locality`` (one probe
    each: the world's true value), and the rest (every fact a 4-way question,
    the general-knowledge test). Forget texts are every hazardous sentence."""
    rng = random.Random(f"study-{world.seed}-{seed}")
    people = world.people[:]
    rng.shuffle(people)
    if n_edits + n_locality >= len(people):
        raise ValueError(
            f"compose.data: edits ({n_edits}) + locality probes ({n_locality}) must be fewer than the world's people ({len(people)})"
        )
    edits, locality, utility = [], [], []
    for p in people[:n_edits]:
        rel = rng.choice(sorted(PEOPLE))
        values, templates = PEOPLE[rel]
        true = world.value(p, rel)
        new = rng.choice([v for v in values if v != true])
        edits.append(
            EditRequest(
                subject=p,
                relation=rel,
                prompt=prompt_of(templates[0], p),
                target_new=" " + new,
                target_true=" " + true,
                paraphrases=tuple(prompt_of(t, p) for t in templates[1:]),
            )
        )
    for p in people[n_edits : n_edits + n_locality]:
        rel = rng.choice(sorted(PEOPLE))
        locality.append(Probe(prompt=prompt_of(PEOPLE[rel][1][0], p), answer=" " + world.value(p, rel)))
    rest = set(people[n_edits + n_locality :])
    for i, f in enumerate(f for f in world.facts if not f.hazardous and f.subject in rest):
        utility.append(_mcq(world, f, i, rng))
    hazard = [f for f in world.facts if f.hazardous]
    forget_mcq = [_mcq(world, f, i, rng) for i, f in enumerate(hazard)]
    forget_texts = [s for f in hazard for s in world.sentences(f)]
    return {"edits": edits, "locality": locality, "utility_mcq": utility, "forget_mcq": forget_mcq, "forget_texts": forget_texts}


def _sentences(text: str, min_chars: int = 40, max_chars: int = 300) -> list[str]:
    import re

    out = []
    for s in re.split(r"(?<=[.!?])\s+", text):
        s = s.strip()
        if min_chars <= len(s) <= max_chars:
            out.append(s)
    return out


def general_text(corpus_dir, sources: list[str], n: int, seed: int) -> list[str]:
    """``n`` sentences of the corpus's general text (training split; the generated
    sources, tasks and the knowledge world itself, are left out): the retain set."""
    from compbench.corpus import documents, read_split

    pool = []
    for s in sources:
        if s in ("tasks", "knowledge"):
            continue
        for d in documents(read_split(corpus_dir, s, "train")):
            pool += _sentences(d)
    if len(pool) < n:
        raise ValueError(f"compose.data.retain={n} sentences asked, the corpus has {len(pool)}")
    return random.Random(f"retain-{seed}").sample(pool, n)


@SOURCES.register("world")
def from_world(spec: dict, corpus_dir=None, corpus_sources=(), knowledge=None, model_dir=None, device="cpu") -> StudyData:
    """The generated knowledge world with the options it was pretrained with (``knowledge``: corpus.knowledge)."""
    k = knowledge or {}
    world = World(k.get("people", 48), k.get("agents", 24), k.get("seed", 0))
    d = world_study(world, spec["edits"], spec["locality"], spec.get("seed", 0))
    return _with_retain(d, spec, "world", corpus_dir, corpus_sources)


def _with_retain(d: dict, spec: dict, source: str, corpus_dir, corpus_sources, knowledge=()) -> StudyData:
    """A study (edits, probes, forget set and tests) plus the corpus's general text as its retain set."""
    if corpus_dir is None:
        raise ValueError(f"composability data source {source!r} needs the corpus directory (retain set)")
    retain = general_text(corpus_dir, list(corpus_sources), spec["retain"], spec.get("seed", 0))
    return StudyData(
        edits=d["edits"],
        locality=d["locality"],
        forget_texts=d["forget_texts"],
        retain_texts=retain,
        forget_mcq=d["forget_mcq"],
        utility_mcq=d["utility_mcq"],
        knowledge=list(knowledge),
    )


# ------------------------------------------------------------ real data sets


def _load(ref: dict, what: str):
    """A data set by local path (JSON / JSONL) or Hugging Face id (``path``, optional ``name``, ``split``)."""
    path = ref.get("path")
    if not path:
        raise ValueError(f"compose.data.{what}: give a 'path' (a local JSON/JSONL file or a Hugging Face id)")
    if Path(path).exists():
        text = Path(path).read_text()
        try:
            rows = json.loads(text)
        except json.JSONDecodeError:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return rows if isinstance(rows, list) else rows[ref.get("split", "test")]
    from datasets import load_dataset

    try:
        return list(load_dataset(path, ref.get("name"), split=ref.get("split", "test")))
    except Exception as e:  # network, gated repository, missing config: many types
        raise RuntimeError(
            f"could not load compose.data.{what} {path!r} (name={ref.get('name')!r}, split={ref.get('split', 'test')!r}): {e}"
        ) from e


def zsre_edits(rows: list[dict], n: int) -> tuple[list[EditRequest], list[Probe]]:
    """zsRE in EasyEdit's / MEND's format: src, subject, alt (new target), answers,
    rephrase, loc ("nq question: …"), loc_ans."""
    edits, loc = [], []
    for r in rows[:n]:
        edits.append(
            EditRequest(
                subject=r["subject"],
                relation="zsre",
                prompt=r["src"],
                target_new=" " + r["alt"],
                target_true=" " + (r.get("answers") or [""])[0],
                paraphrases=(r["rephrase"],),
            )
        )
        loc.append(Probe(prompt=r["loc"], answer=" " + r["loc_ans"]))
    return edits, loc


def counterfact_edits(rows: list[dict], n: int) -> tuple[list[EditRequest], list[Probe]]:
    """CounterFact (ROME): requested_rewrite {prompt with '{}', subject, target_new.str,
    target_true.str}, paraphrase_prompts, neighborhood_prompts (their answer is target_true)."""
    edits, loc = [], []
    for r in rows[:n]:
        rw = r["requested_rewrite"]
        edits.append(
            EditRequest(
                subject=rw["subject"],
                relation=rw.get("relation_id", "cf"),
                prompt=rw["prompt"].format(rw["subject"]),
                target_new=" " + rw["target_new"]["str"],
                target_true=" " + rw["target_true"]["str"],
                paraphrases=tuple(r.get("paraphrase_prompts", ())),
            )
        )
        loc += [Probe(prompt=p, answer=" " + rw["target_true"]["str"]) for p in r.get("neighborhood_prompts", ())[:1]]
    return edits, loc


EDIT_FORMATS = {"zsre": zsre_edits, "counterfact": counterfact_edits}


def mcq_items(rows: list[dict], n: int) -> list[MCQ]:
    """WMDP / MMLU rows (question, choices, answer index) as "Question: …\\nAnswer:" items."""
    return [MCQ(f"Question: {r['question'].strip()}\nAnswer:", tuple(str(c) for c in r["choices"]), int(r["answer"])) for r in rows[:n]]


def texts(rows: list[dict], n: int, field: str = "text") -> list[str]:
    return [str(r[field]) for r in rows[:n]]


@SOURCES.register("hf")
def from_hf(spec: dict, corpus_dir=None, corpus_sources=(), knowledge=None, model_dir=None, device="cpu") -> StudyData:
    fmt = spec.get("edit_format", "zsre")
    if fmt not in EDIT_FORMATS:
        raise ValueError(f"compose.data.edit_format={fmt!r}; allowed: {', '.join(EDIT_FORMATS)}")
    edits, loc = EDIT_FORMATS[fmt](_load(spec["edit_data"], "edit_data"), spec["edits"])
    return StudyData(
        edits=edits,
        locality=loc[: spec["locality"]],
        forget_texts=texts(_load(spec["forget_corpus"], "forget_corpus"), spec.get("forget_n", 1000)),
        retain_texts=texts(_load(spec["retain_corpus"], "retain_corpus"), spec["retain"]),
        forget_mcq=mcq_items(_load(spec["forget_mcq"], "forget_mcq"), spec.get("mcq_n", 10**9)),
        utility_mcq=mcq_items(_load(spec["utility_mcq"], "utility_mcq"), spec.get("mcq_n", 10**9)),
    )


@SOURCES.register("facts")
def from_facts(spec: dict, corpus_dir=None, corpus_sources=(), knowledge=None, model_dir=None, device="cpu") -> StudyData:
    """Real-world facts the dense model at ``model_dir`` knows (compbench.compose.facts)."""
    from compbench import variants
    from compbench.compose import facts
    from compbench.tokenizer import load as load_tokenizer

    if model_dir is None:
        raise ValueError("composability data source 'facts' checks what the model knows: it needs the model directory")
    model, tok_dir = variants.load(model_dir, device=device)
    model.eval()
    check = facts.knowledge_check(model, load_tokenizer(tok_dir), device, spec.get("seed", 0))
    known = [(r["relation"], r["subject"], r["value"]) for r in check if r["known"]]
    d = facts.study(known, spec["edits"], spec["locality"], spec.get("seed", 0))
    return _with_retain(d, spec, "facts", corpus_dir, corpus_sources, knowledge=check)


from_facts.needs_model = True


def build(spec: dict, corpus_dir=None, corpus_sources=(), knowledge=None, model_dir=None, device="cpu") -> StudyData:
    return SOURCES.get(spec["source"])(
        spec, corpus_dir=corpus_dir, corpus_sources=corpus_sources, knowledge=knowledge, model_dir=model_dir, device=device
    )

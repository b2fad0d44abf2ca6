"""Real-world facts for the composability study on a pretrained model, offline.

The generated knowledge world (:mod:`compbench.knowledge`) is what the tiny model
learned in pretraining; a real pretrained model (SmolLM2, issue 17) never saw it, so
editing or unlearning it tests nothing the model knew. This module holds a small
table of well-known, stable facts (capitals, languages, currencies, authors, chemical
symbols) and builds the study from the ones **the dense model demonstrably knows**:

* a fact is *known* when the model, teacher-forced after the fact's first prompt,
  predicts the first token of the true value (greedy) **and** ranks the true value
  first among it and three other values of the same relation (4-way log-likelihood);
  both are measured on the unedited model in the ``compose_data`` job and recorded;
* edits (CounterFact style, the composability paper's editing setting): a known fact
  rewritten to another value of its relation; the other templates are paraphrases;
* locality probes: other known facts of other subjects (their true answers);
* the unlearning topic is chemistry (element -> symbol): the forget set is every
  sentence of the known chemistry facts, the forget test their 4-way questions, as
  WMDP is a topic's texts and questions in the paper; general knowledge (utility)
  is the 4-way questions of the remaining known facts of the other relations.

The facts are common knowledge (no data set is copied). Who may edit the table:
a fact that is ambiguous or has changed is a bug; each relation keeps >= 8 values so
that distractors exist.
"""

from __future__ import annotations

import random

from compbench.compose.interventions.registry import MCQ, EditRequest, Probe

FORGET_RELATION = "symbol"

# relation -> (prompt templates ending before the value, {subject: value})
RELATIONS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "capital": (
        ("The capital of {} is", "The capital city of {} is", "{}'s capital is"),
        {
            "France": "Paris",
            "Germany": "Berlin",
            "Italy": "Rome",
            "Spain": "Madrid",
            "Portugal": "Lisbon",
            "Japan": "Tokyo",
            "China": "Beijing",
            "Russia": "Moscow",
            "Egypt": "Cairo",
            "Greece": "Athens",
            "Austria": "Vienna",
            "Poland": "Warsaw",
            "Norway": "Oslo",
            "Sweden": "Stockholm",
            "Finland": "Helsinki",
            "Denmark": "Copenhagen",
            "Ireland": "Dublin",
            "England": "London",
            "Hungary": "Budapest",
            "Thailand": "Bangkok",
            "Kenya": "Nairobi",
            "Peru": "Lima",
            "Argentina": "Buenos Aires",
            "Mexico": "Mexico City",
            "Canada": "Ottawa",
            "Australia": "Canberra",
            "India": "New Delhi",
            "South Korea": "Seoul",
            "Iran": "Tehran",
            "Iraq": "Baghdad",
            "Cuba": "Havana",
            "Belgium": "Brussels",
            "the Netherlands": "Amsterdam",
            "Switzerland": "Bern",
            "Turkey": "Ankara",
            "Ukraine": "Kyiv",
            "Chile": "Santiago",
            "Colombia": "Bogota",
            "Vietnam": "Hanoi",
            "the Philippines": "Manila",
        },
    ),
    "language": (
        ("The official language of {} is", "In {}, people speak", "The main language spoken in {} is"),
        {
            "France": "French",
            "Germany": "German",
            "Italy": "Italian",
            "Spain": "Spanish",
            "Portugal": "Portuguese",
            "Japan": "Japanese",
            "China": "Chinese",
            "Russia": "Russian",
            "Greece": "Greek",
            "Poland": "Polish",
            "Sweden": "Swedish",
            "Finland": "Finnish",
            "Hungary": "Hungarian",
            "Turkey": "Turkish",
            "Brazil": "Portuguese",
            "Mexico": "Spanish",
            "Egypt": "Arabic",
            "Israel": "Hebrew",
            "Thailand": "Thai",
            "Vietnam": "Vietnamese",
            "South Korea": "Korean",
            "the Netherlands": "Dutch",
            "Norway": "Norwegian",
            "Denmark": "Danish",
        },
    ),
    "currency": (
        ("The currency of {} is the", "In {}, people pay with the", "The official currency of {} is the"),
        {
            "Japan": "yen",
            "India": "rupee",
            "Russia": "ruble",
            "Mexico": "peso",
            "the United Kingdom": "pound",
            "the United States": "dollar",
            "China": "yuan",
            "South Korea": "won",
            "Germany": "euro",
            "Switzerland": "franc",
            "Brazil": "real",
            "Poland": "zloty",
            "Turkey": "lira",
            "Thailand": "baht",
            "Sweden": "krona",
            "South Africa": "rand",
        },
    ),
    "author": (
        ("The novel {} was written by", "{} is a book by", "The author of {} is"),
        {
            "Hamlet": "William Shakespeare",
            "Pride and Prejudice": "Jane Austen",
            "War and Peace": "Leo Tolstoy",
            "Oliver Twist": "Charles Dickens",
            "Nineteen Eighty-Four": "George Orwell",
            "Don Quixote": "Miguel de Cervantes",
            "The Odyssey": "Homer",
            "Moby-Dick": "Herman Melville",
            "Frankenstein": "Mary Shelley",
            "The Old Man and the Sea": "Ernest Hemingway",
            "Crime and Punishment": "Fyodor Dostoevsky",
            "The Adventures of Tom Sawyer": "Mark Twain",
            "Harry Potter and the Philosopher's Stone": "J. K. Rowling",
            "The Hobbit": "J. R. R. Tolkien",
            "Les Miserables": "Victor Hugo",
            "Jane Eyre": "Charlotte Bronte",
        },
    ),
    FORGET_RELATION: (
        ("The chemical symbol for {} is", "The element {} has the chemical symbol", "In chemistry, the symbol of {} is"),
        {
            "gold": "Au",
            "silver": "Ag",
            "iron": "Fe",
            "copper": "Cu",
            "sodium": "Na",
            "potassium": "K",
            "lead": "Pb",
            "mercury": "Hg",
            "tin": "Sn",
            "zinc": "Zn",
            "oxygen": "O",
            "hydrogen": "H",
            "carbon": "C",
            "nitrogen": "N",
            "helium": "He",
            "neon": "Ne",
            "calcium": "Ca",
            "chlorine": "Cl",
            "sulfur": "S",
            "uranium": "U",
            "magnesium": "Mg",
            "aluminium": "Al",
            "lithium": "Li",
            "platinum": "Pt",
        },
    ),
}


def candidates() -> list[tuple[str, str, str]]:
    """Every (relation, subject, value) of the table, in a fixed order."""
    return [(rel, s, v) for rel, (_, table) in RELATIONS.items() for s, v in table.items()]


def distractors(rel: str, value: str, rng: random.Random, k: int = 3) -> list[str]:
    values = sorted({v for v in RELATIONS[rel][1].values() if v != value})
    return rng.sample(values, k)


def probe_items(seed: int = 0) -> list[tuple[tuple[str, str, str], MCQ]]:
    """The knowledge check's 4-way question for every candidate fact (first template)."""
    rng = random.Random(f"facts-probe-{seed}")
    out = []
    for rel, s, v in candidates():
        choices = [*distractors(rel, v, rng), v]
        rng.shuffle(choices)
        out.append(((rel, s, v), MCQ(RELATIONS[rel][0][0].format(s), tuple(choices), choices.index(v))))
    return out


def knowledge_check(model, tokenizer, device, seed: int = 0) -> list[dict]:
    """Per candidate fact: does the dense model know it? (greedy first token of the
    true value after the first prompt, and the true value first of four by summed
    log-likelihood; both must hold)."""
    from compbench.compose import metrics

    items = probe_items(seed)
    mcqs = [q for _, q in items]
    scores = metrics.choice_loglik(model, tokenizer, mcqs, device)
    firsts = metrics._argmax_at_targets(model, tokenizer, [q.prompt for q in mcqs], [" " + f[2] for f, _ in items], device)
    out = []
    for ((rel, s, v), q), sc, (pred, ref) in zip(items, scores, firsts):
        mcq_ok = max(range(len(sc)), key=sc.__getitem__) == q.label
        greedy_ok = pred[0] == ref[0]
        out.append(
            {"relation": rel, "subject": s, "value": v, "mcq": bool(mcq_ok), "greedy": bool(greedy_ok), "known": bool(mcq_ok and greedy_ok)}
        )
    return out


def study(known: list[tuple[str, str, str]], n_edits: int, n_locality: int, seed: int = 0) -> dict:
    """Edits, locality probes, the forget set and both tests from the known facts
    (split as the module docstring says; subjects of edits and probes are disjoint)."""
    rng = random.Random(f"facts-study-{seed}")
    general = [f for f in known if f[0] != FORGET_RELATION]
    forget = [f for f in known if f[0] == FORGET_RELATION]
    rng.shuffle(general)
    need = n_edits + n_locality + 4
    if len(general) < need or len(forget) < 4:
        raise ValueError(
            f"compose.data (facts): the model knows {len(general)} general facts and {len(forget)} chemistry facts; "
            f"edits ({n_edits}) + locality ({n_locality}) + at least 4 utility questions need {need} general facts "
            "and the forget test at least 4: lower compose.data.edits / locality, or use a model that knows more"
        )
    edits, locality, used_subjects = [], [], set()
    pool = iter(general)
    utility = []
    for rel, s, v in pool:
        templates = RELATIONS[rel][0]
        if len(edits) < n_edits and s not in used_subjects:
            new = rng.choice(distractors(rel, v, rng))
            edits.append(
                EditRequest(
                    subject=s,
                    relation=rel,
                    prompt=templates[0].format(s),
                    target_new=" " + new,
                    target_true=" " + v,
                    paraphrases=tuple(t.format(s) for t in templates[1:]),
                )
            )
            used_subjects.add(s)
        elif len(locality) < n_locality and s not in used_subjects:
            locality.append(Probe(prompt=templates[1].format(s), answer=" " + v))
            used_subjects.add(s)
        elif s not in used_subjects:
            utility.append((rel, s, v))
    if len(edits) < n_edits or len(locality) < n_locality or len(utility) < 4:
        raise ValueError(
            f"compose.data (facts): {len(edits)} edits, {len(locality)} locality probes and {len(utility)} utility questions "
            f"from distinct subjects (asked {n_edits}, {n_locality}, >= 4): lower compose.data.edits / locality"
        )

    def mcq(fact, i):
        rel, s, v = fact
        choices = [*distractors(rel, v, rng), v]
        rng.shuffle(choices)
        templates = RELATIONS[rel][0]
        return MCQ(templates[i % len(templates)].format(s), tuple(choices), choices.index(v))

    forget_texts = [f"{t.format(s)} {v}." for rel, s, v in forget for t in RELATIONS[rel][0]]
    return {
        "edits": edits,
        "locality": locality,
        "utility_mcq": [mcq(f, i) for i, f in enumerate(utility)],
        "forget_mcq": [mcq(f, i) for i, f in enumerate(forget)],
        "forget_texts": forget_texts,
    }

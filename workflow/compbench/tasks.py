"""Offline tasks generated here: the embedded default's stand-ins for the
downstream data sets of the calibration study (arithmetic, reading QA,
commonsense sentence continuation) and its zero-shot evaluation tasks.

Three tasks (registry :data:`TASKS`), each a multiple-choice item with a
worked rationale (for the CoT calibration format):

* ``arith`` (GSM8K / SVAMP / MAWPS stand-in): "What is 47 plus 8?" with a
  units-then-tens rationale; choices are the sum and three other numbers.
* ``facts`` (template facts read in context, RACE / CommonsenseQA stand-in):
  three "<name> lives in <city>." style facts, then a question about one of
  them; choices are cities / animals / colours, the right one among them.
* ``continuation`` (HellaSwag / WinoGrande stand-in): "<name> was thirsty,
  so <pronoun>" and four endings, one of which fits the situation.

Every item has a *key*. A seeded draw of ``eval_items`` keys per task is held
out: :func:`train_items` never yields an item whose key is held out, and
:func:`eval_items` yields only held-out ones, so the zero-shot evaluation never
sees an item the tiny model was trained on. A share of training items is mixed
into the tiny model's pretraining corpus (corpus source ``tasks``), in the
plain form ("Question: …\\nAnswer: …") and, for half of them, in the CoT form
("… Answer: <rationale>. So the answer is <label>.").
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from compbench.registry import Registry


@dataclass(frozen=True)
class Item:
    task: str
    key: tuple
    question: str  # the question, without "Question:" / "Answer:"
    choices: tuple[str, ...]
    label: int
    rationale: str
    style: str = "qa"  # "qa": "Question: {q}\nAnswer: {a}";  "continuation": "{q} {a}"

    @property
    def answer(self) -> str:
        return self.choices[self.label]

    @property
    def prompt(self) -> str:
        """What a zero-shot evaluation shows the model (the answer follows after one space)."""
        return f"Question: {self.question}\nAnswer:" if self.style == "qa" else self.question

    def text(self, cot: bool = False) -> str:
        """The item as pretraining text; with ``cot`` the answer is "<rationale>. So the answer is <label>."."""
        return f"{self.prompt} {cot_answer(self.rationale, self.answer) if cot else self.answer}"

    def record(self) -> dict:
        return {
            "task": self.task,
            "question": self.question,
            "prompt": self.prompt,
            "choices": list(self.choices),
            "label": self.label,
            "answer": self.answer,
            "rationale": self.rationale,
        }


@dataclass(frozen=True)
class Task:
    name: str
    keys: Callable[[random.Random], tuple]  # draw a random key
    item: Callable[[tuple, random.Random], Item]  # key -> item (distractors drawn with rng)
    n_choices: int = 4
    stands_in_for: str = ""
    universe: int = field(default=0)  # number of distinct keys (0 = practically unbounded)


TASKS: Registry[Task] = Registry("generated task")


def cot_answer(rationale: str, label: str) -> str:
    """The CoT answer form of the calibration paper: "{rationale}. So the answer is {label}."."""
    return f"{rationale.rstrip('.')}. So the answer is {label.rstrip('.')}."


def _choices(rng: random.Random, correct: str, pool: list[str], k: int) -> tuple[tuple[str, ...], int]:
    others = [p for p in dict.fromkeys(pool) if p != correct]
    picked = rng.sample(others, k - 1) + [correct]
    rng.shuffle(picked)
    return tuple(picked), picked.index(correct)


# ------------------------------------------------------------------ arithmetic


def _arith_key(rng):
    return (rng.randint(10, 99), rng.randint(1, 9))


def _arith_item(key, rng):
    a, b = key
    s = a + b
    units = a % 10 + b
    rationale = f"{a % 10} plus {b} is {units}, and {a - a % 10} plus {units} is {s}"
    pool = [str(x) for x in range(10, 109)]
    choices, label = _choices(rng, str(s), pool, 4)
    return Item("arith", key, f"What is {a} plus {b}?", choices, label, rationale)


TASKS.register("arith")(Task("arith", _arith_key, _arith_item, stands_in_for="GSM8K, SVAMP, MAWPS", universe=90 * 9))

# ------------------------------------------------------------- template facts

NAMES = [
    ("Anna", "she"),
    ("Tom", "he"),
    ("Maria", "she"),
    ("John", "he"),
    ("Lucy", "she"),
    ("Peter", "he"),
    ("Sarah", "she"),
    ("David", "he"),
    ("Emma", "she"),
    ("James", "he"),
    ("Laura", "she"),
    ("Paul", "he"),
    ("Kate", "she"),
    ("Mark", "he"),
    ("Alice", "she"),
    ("Robert", "he"),
    ("Helen", "she"),
    ("George", "he"),
    ("Julia", "she"),
    ("Simon", "he"),
    ("Clara", "she"),
    ("Henry", "he"),
    ("Rose", "she"),
    ("Jack", "he"),
]
ATTRIBUTES = {
    # attribute: (statement template, question template, values)
    "city": (
        "{n} lives in {v}.",
        "Where does {n} live?",
        ["Paris", "London", "Rome", "Berlin", "Madrid", "Vienna", "Dublin", "Sydney", "Tokyo", "Cairo", "Oslo", "Lisbon"],
    ),
    "animal": (
        "{n} has a {v}.",
        "What animal does {n} have?",
        ["dog", "cat", "horse", "rabbit", "parrot", "goat", "duck", "pig", "sheep", "mouse"],
    ),
    "colour": (
        "{n} likes the colour {v}.",
        "Which colour does {n} like?",
        ["red", "blue", "green", "yellow", "black", "white", "orange", "purple", "brown", "pink"],
    ),
}


def _facts_key(rng):
    attr = rng.choice(sorted(ATTRIBUTES))
    names = tuple(n for n, _ in rng.sample(NAMES, 3))
    values = tuple(rng.sample(ATTRIBUTES[attr][2], 3))
    return (attr, names, values, rng.randrange(3))


def _facts_item(key, rng):
    attr, names, values, q = key
    stmt, quest, pool = ATTRIBUTES[attr]
    facts = " ".join(stmt.format(n=n, v=v) for n, v in zip(names, values))
    correct = values[q]
    # the other two values of the context are always among the choices: the answer must be read, not guessed
    other = [p for p in pool if p not in values]
    picked = list(values) + [rng.choice(other)]
    rng.shuffle(picked)
    rationale = f"The text says that {stmt.format(n=names[q], v=correct)[:-1]}"
    return Item("facts", key, f"{facts} {quest.format(n=names[q])}", tuple(picked), picked.index(correct), rationale)


TASKS.register("facts")(Task("facts", _facts_key, _facts_item, stands_in_for="RACE, CommonsenseQA (reading QA)"))

# ------------------------------------------------------ sentence continuation

SITUATIONS = [
    # (situation, ending, reason)
    ("was thirsty", "drank a glass of water", "water takes thirst away"),
    ("was hungry", "ate a big sandwich", "food takes hunger away"),
    ("was tired", "went to bed early", "sleep helps when you are tired"),
    ("was cold", "put on a warm coat", "a coat keeps you warm"),
    ("was hot", "opened the window", "fresh air cools a room"),
    ("saw that it was raining", "took an umbrella", "an umbrella keeps the rain off"),
    ("had a headache", "took a pill", "a pill helps against pain"),
    ("lost the keys", "looked under the sofa", "lost things are often under furniture"),
    ("wanted to read", "opened a book", "books are for reading"),
    ("had dirty hands", "washed them with soap", "soap cleans hands"),
    ("was late for work", "ran to the bus stop", "running saves time"),
    ("heard the phone ring", "answered the call", "a ringing phone is a call"),
    ("wanted to send a letter", "went to the post office", "letters are sent at the post office"),
    ("felt sick", "called the doctor", "doctors help sick people"),
    ("needed milk", "went to the shop", "milk is sold in shops"),
    ("had a birthday", "baked a cake", "birthdays are celebrated with cake"),
    ("could not see in the dark", "turned on the light", "light lets you see"),
    ("wanted to learn to swim", "went to the pool", "people swim in a pool"),
    ("got a new puppy", "bought some dog food", "puppies need food"),
    ("had a flat tyre", "fixed the bike", "a flat tyre stops a bike"),
]


def _cont_key(rng):
    return (rng.randrange(len(NAMES)), rng.randrange(len(SITUATIONS)))


def _cont_item(key, rng):
    n, s = key
    name, pron = NAMES[n]
    situation, ending, reason = SITUATIONS[s]
    choices, label = _choices(rng, f"{ending}.", [f"{e}." for _, e, _ in SITUATIONS], 4)
    rationale = f"{name} {situation}, and {reason}"
    return Item("continuation", key, f"{name} {situation}, so {pron}", choices, label, rationale, style="continuation")


TASKS.register("continuation")(
    Task(
        "continuation",
        _cont_key,
        _cont_item,
        stands_in_for="HellaSwag, WinoGrande (commonsense continuation)",
        universe=len(NAMES) * len(SITUATIONS),
    )
)

# ------------------------------------------------------------------- splits


def heldout_keys(task: str, n: int, seed: int) -> list[tuple]:
    """The ``n`` keys of ``task`` held out for evaluation (a seeded draw of distinct keys)."""
    t = TASKS.get(task)
    if t.universe and n > t.universe // 2:
        raise ValueError(f"tasks: eval_items={n} holds out more than half of the {t.universe} items of task {task!r}")
    rng = random.Random(f"heldout-{task}-{seed}")
    keys: dict[tuple, None] = {}
    while len(keys) < n:
        keys[t.keys(rng)] = None
    return list(keys)


def eval_items(task: str, n: int, seed: int) -> list[Item]:
    rng = random.Random(f"eval-{task}-{seed}")
    return [TASKS.get(task).item(k, rng) for k in heldout_keys(task, n, seed)]


def train_items(task: str, eval_n: int, seed: int, stream_seed) -> Iterator[Item]:
    """An endless seeded stream of training items of ``task``, none of them held out."""
    t = TASKS.get(task)
    held = set(heldout_keys(task, eval_n, seed))
    rng = random.Random(f"train-{task}-{seed}-{stream_seed}")
    while True:
        k = t.keys(rng)
        if k not in held:
            yield t.item(k, rng)


def corpus_documents(share: float, other_chars: int, eval_n: int, seed: int, tasks: list[str] | None = None) -> list[str]:
    """Pretraining documents (one item each) making up ``share`` of the corpus
    characters given ``other_chars`` of other text: tasks in turn, every other
    item in the CoT form."""
    if not 0 < share < 1:
        raise ValueError(f"corpus.tasks.share={share} must be in (0, 1)")
    names = tasks or TASKS.names()
    target = share * other_chars / (1 - share)
    streams = {t: train_items(t, eval_n, seed, "corpus") for t in names}
    docs, total, i = [], 0, 0
    while total < target:
        item = next(streams[names[i % len(names)]])
        d = item.text(cot=item.style == "qa" and (i // len(names)) % 2 == 1)
        docs.append(d)
        total += len(d) + 2
        i += 1
    return docs


def write_eval_jsonl(path: str | Path, items: list[Item]) -> None:
    from compbench.artifacts import write_text

    write_text(path, "".join(json.dumps(it.record(), sort_keys=True) + "\n" for it in items))


def chance(task: str) -> float:
    return 1.0 / TASKS.get(task).n_choices

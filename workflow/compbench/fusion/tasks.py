"""Binary text classification tasks for model fusion, as prompts answered by a label word.

An example is ``(prompt, label)``; the model's answer is the label word whose
(first) token has the larger next-token logit after the prompt. Same code path
for both worlds:

* ``generated`` (embedded default): sentences ``"the <colour> <noun> <verb> <place>"``
  made here from word lists, with *independent* attributes; each task asks a
  different question about the same kind of sentence, answered ``yes`` / ``no``:
  ``animal`` — is the subject an animal (vs an object)?; ``outdoor`` — does it
  happen outdoors (vs indoors)?; ``warm`` — is the colour warm (vs cool)?
  Train and test sentences are disjoint draws from the same lists.
* ``hf``: a GLUE-style data set by hub id (e.g. ``nyu-mll/glue`` / ``sst2``), loaded
  lazily with ``datasets``; offline it fails with a message naming the id.
"""

from __future__ import annotations

import random

from compbench.registry import Registry

GENERATED: Registry = Registry("generated text task")

ANIMALS = ["dog", "cat", "horse", "bird", "fish", "cow", "sheep", "lion", "mouse", "fox", "wolf", "bear", "duck", "goat", "pig", "rabbit"]
OBJECTS = ["car", "table", "chair", "book", "phone", "lamp", "bottle", "box", "door", "clock", "shoe", "cup", "knife", "bag", "key", "pen"]
OUTDOOR = ["in the park", "on the hill", "in the forest", "by the river", "in the garden", "on the beach", "in the field", "on the road"]
INDOOR = [
    "in the kitchen",
    "in the office",
    "in the bedroom",
    "in the hall",
    "in the library",
    "in the bathroom",
    "in the shop",
    "in the school",
]
WARM = ["red", "orange", "yellow", "brown", "pink", "golden"]
COOL = ["blue", "green", "grey", "purple", "white", "silver"]
VERBS = ["was seen", "stood still", "was found", "appeared", "was left", "stayed", "was waiting", "moved"]
LABEL_WORDS = ["no", "yes"]  # no leading space: the prompt ends with "answer: " (small BPE vocabularies merge " no"/" yes" differently)


def _sentence(rng: random.Random) -> tuple[str, dict]:
    a, o, w = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5
    noun = rng.choice(ANIMALS if a else OBJECTS)
    place = rng.choice(OUTDOOR if o else INDOOR)
    colour = rng.choice(WARM if w else COOL)
    return f"the {colour} {noun} {rng.choice(VERBS)} {place}.", {"animal": int(a), "outdoor": int(o), "warm": int(w)}


def _register(name: str, question: str):
    @GENERATED.register(name)
    def task(rng: random.Random) -> tuple[str, int]:
        text, attrs = _sentence(rng)
        return f"{text} question: {question} answer: ", attrs[name]

    return task


_register("animal", "is it an animal?")
_register("outdoor", "is it outside?")
_register("warm", "is the colour warm?")


def build(spec: dict, n_train: int, n_test: int, seed: int) -> dict:
    """``{"name", "label_words", "train": [[prompt, label], ...], "test": [...]}`` for one task spec."""
    if spec["source"] == "generated":
        fn = GENERATED.get(spec["name"])
        rng = random.Random(f"{spec['name']}-{seed}")
        seen, train, test = set(), [], []
        tries = 0
        while len(train) + len(test) < n_train + n_test:
            tries += 1
            if tries > 50 * (n_train + n_test):
                raise ValueError(f"task {spec['name']!r}: cannot draw {n_train + n_test} distinct sentences")
            p, y = fn(rng)
            if p in seen:
                continue
            seen.add(p)
            (train if len(train) < n_train else test).append([p, y])
        return {"name": spec["name"], "label_words": LABEL_WORDS, "train": train, "test": test}
    return _hf(spec, n_train, n_test, seed)  # pragma: no cover - needs the hub


def _hf(spec: dict, n_train: int, n_test: int, seed: int) -> dict:  # pragma: no cover - needs the hub
    try:
        from datasets import load_dataset

        ds = load_dataset(spec["id"], spec.get("subset"))
    except Exception as e:
        raise RuntimeError(f"could not load task data set {spec['id']!r}/{spec.get('subset')} from the Hugging Face hub: {e}") from e
    tmpl = spec.get("prompt", "{text} answer:")
    out = {}
    for split, key, n in (("train", spec.get("train_split", "train"), n_train), ("test", spec.get("test_split", "validation"), n_test)):
        d = ds[key].shuffle(seed=seed).select(range(min(n, len(ds[key]))))
        out[split] = [[tmpl.format(text=r[spec.get("text_key", "sentence")]), int(r[spec.get("label_key", "label")])] for r in d]
    return {"name": spec["name"], "label_words": spec["label_words"], **out}

"""Calibration token sets: which text a pruning or quantisation method sees.

Pre-training sources (registry :data:`SOURCES`) give ``n_samples`` random windows of
``seq_len`` tokens. Real runs follow Wanda/SparseGPT: 128 random 2048-token
windows of C4 ``en`` train shard 0 (seed 0); a document is redrawn until it is
longer than the window. The embedded default draws windows from the tiny
corpus's train split. A token set is saved as safetensors (``ids``, int64,
``[n_samples, seq_len]``) plus a JSON manifest.

Downstream sources (registry :data:`EXAMPLES`) and their formats are those of the
calibration-data study:


Bandari et al., "Is C4 Dataset Optimal for Pruning? An Investigation of
Calibration Data for LLM Pruning" (EMNLP 2024). Sources, by category:

* pre-training text (format ``raw``: random windows, as Wanda/SparseGPT cut C4):
  ``c4`` (``allenai/c4`` en), ``pile`` (``monology/pile-uncopyrighted``),
  ``oscar`` (``oscar`` / ``unshuffled_deduplicated_en``), ``redpajama``
  (``togethercomputer/RedPajama-Data-V2``, ``sample``), ``wikitext2``
  (``wikitext`` / ``wikitext-2-raw-v1``); offline: ``tiny`` (the tiny corpus);
* arithmetic: ``gsm8k`` (``openai/gsm8k``, main), ``svamp`` (``ChilleD/SVAMP``),
  ``mawps`` (``MU-NLPC/Calc-mawps``); offline: ``arith``;
* natural-language inference: ``esnli`` (``esnli``), ``anli_r1`` / ``anli_r3``
  (``facebook/anli``, train_r1 / train_r3);
* commonsense QA: ``commonsense_qa`` (``tau/commonsense_qa``), ``race``
  (``ehovy/race``, all), ``winogrande`` (``allenai/winogrande``, winogrande_xl);
  offline: ``facts`` (reading QA), ``continuation`` (sentence continuation);
* control: ``random`` (random strings of random letters; the paper's control).

Downstream formats (a downstream example is "Question: {q}\\nAnswer: {a}"):

* ``zero``: the prompt only ("Question: {q}\\nAnswer:"), one per sample;
* ``single``: one question-answer pair per sample;
* ``concat`` (the paper's default ICL): pairs concatenated (blank line between)
  until they exceed the window, then a random window of ``seq_len`` tokens;
* ``icl<k>``: exactly ``k`` pairs per sample;
* ``cot``: like ``concat``, each answer being "{rationale}. So the answer is {label}."
  (only for sources with rationales).

``zero`` / ``single`` / ``icl<k>`` samples start with BOS, are truncated to
``seq_len`` (their first tokens kept) and left-padded with the pad token.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from compbench.calibration_catalogue import CATALOGUE, FORMATS, check, parse_format, parse_name, set_name  # noqa: F401
from compbench.registry import Registry

SOURCES: Registry[Callable] = Registry("calibration source")
# Downstream sources of the calibration study: name -> examples (below).
EXAMPLES: Registry = Registry("calibration example source")

# The reference implementations cap the window at 2048 whatever the model's
# max_position_embeddings says (users run out of memory beyond that).
MAX_SEQ_LEN = 2048


def windows_from_documents(docs: list[list[int]], n_samples: int, seq_len: int, seed: int) -> torch.Tensor:
    """Wanda's ``get_c4``: draw a random document until it is longer than the
    window, then a random window inside it; ``n_samples`` times."""
    rng = random.Random(seed)
    long_enough = [d for d in docs if len(d) > seq_len]
    if not long_enough:
        raise ValueError(f"no calibration document is longer than seq_len={seq_len} tokens")
    out = torch.empty(n_samples, seq_len, dtype=torch.long)
    for s in range(n_samples):
        while True:
            d = docs[rng.randrange(len(docs))]
            if len(d) > seq_len:
                break
        i = rng.randrange(0, len(d) - seq_len)
        out[s] = torch.tensor(d[i : i + seq_len])
    return out


def windows_from_stream(ids: torch.Tensor, n_samples: int, seq_len: int, seed: int) -> torch.Tensor:
    """Random windows of one concatenated token stream (WikiText-style)."""
    if ids.numel() <= seq_len:
        raise ValueError(f"calibration text has {ids.numel()} tokens, not more than seq_len={seq_len}")
    rng = random.Random(seed)
    starts = [rng.randrange(0, ids.numel() - seq_len) for _ in range(n_samples)]
    return torch.stack([ids[s : s + seq_len] for s in starts])


@SOURCES.register("tiny")
def _tiny(tokenizer, n_samples, seq_len, seed, corpus_dir=None, sources=(), **_):
    """The natural text of the tiny corpus (the C4 stand-in): generated task
    items (corpus source ``tasks``) are left out."""
    from compbench.corpus import RELATIVE, read_split
    from compbench.tokenizer import encode_stream

    if corpus_dir is None:
        raise ValueError("calibration source 'tiny' needs the corpus directory")
    text = "\n\n".join(read_split(corpus_dir, s, "train") for s in sources if s not in RELATIVE)
    return windows_from_stream(encode_stream(tokenizer, text), n_samples, seq_len, seed)


@SOURCES.register("c4")
def _c4(tokenizer, n_samples, seq_len, seed, **_):
    from datasets import load_dataset

    shard = "en/c4-train.00000-of-01024.json.gz"
    try:
        ds = load_dataset("allenai/c4", data_files={"train": shard}, split="train")
    except Exception as e:  # network / offline errors come in many types
        raise RuntimeError(f"could not load calibration data 'allenai/c4' ({shard}) from the Hugging Face hub: {e}") from e
    # Tokenise lazily: only the documents the draw touches.
    rng = random.Random(seed)
    out = torch.empty(n_samples, seq_len, dtype=torch.long)
    for s in range(n_samples):
        while True:
            ids = tokenizer(ds[rng.randint(0, len(ds) - 1)]["text"], return_tensors="pt").input_ids[0]
            if ids.numel() > seq_len:
                break
        i = rng.randint(0, ids.numel() - seq_len - 1)
        out[s] = ids[i : i + seq_len]
    return out


@SOURCES.register("wikitext2")
def _wikitext2(tokenizer, n_samples, seq_len, seed, **_):
    from datasets import load_dataset

    try:
        ds = load_dataset("wikitext", "wikitext-2-raw-v1", split="train")
    except Exception as e:
        raise RuntimeError(f"could not load calibration data 'wikitext' (wikitext-2-raw-v1, train) from the Hugging Face hub: {e}") from e
    ids = tokenizer("\n\n".join(ds["text"]), return_tensors="pt").input_ids[0]
    return windows_from_stream(ids, n_samples, seq_len, seed)


def token_set(source: str, tokenizer, n_samples: int, seq_len: int, seed: int, fmt: str = "raw", **kw) -> torch.Tensor:
    """``n_samples × seq_len`` calibration token ids. Pre-training sources
    (:data:`SOURCES`) give random windows (format ``raw``); downstream sources
    (:data:`EXAMPLES`, see below) are rendered in a
    format (``zero``, ``single``, ``concat``, ``icl<k>``, ``cot``)."""
    if n_samples < 1:
        raise ValueError(f"calibration n_samples={n_samples} must be ≥ 1")
    seq_len = min(seq_len, MAX_SEQ_LEN)
    if source in EXAMPLES:
        return formatted(source, fmt, tokenizer, n_samples, seq_len, seed, **kw)
    if fmt != "raw":
        raise ValueError(f"calibration source {source!r} is pre-training text: format must be 'raw' (random windows), not {fmt!r}")
    if source not in SOURCES:
        allowed = ", ".join(sorted(set(SOURCES.names()) | set(EXAMPLES.names())))
        raise KeyError(f"unknown calibration source {source!r}; allowed: {allowed}")
    return SOURCES.get(source)(tokenizer, n_samples=n_samples, seq_len=seq_len, seed=seed, **kw)


@dataclass(frozen=True)
class Example:
    question: str
    answer: str
    rationale: str | None = None


def render(ex: Example, kind: str) -> str:
    from compbench.tasks import cot_answer

    if kind == "zero":
        return f"Question: {ex.question}\nAnswer:"
    if kind == "cot":
        if not ex.rationale:
            raise ValueError("calibration format 'cot' needs an example with a rationale")
        return f"Question: {ex.question}\nAnswer: {cot_answer(ex.rationale, ex.answer)}"
    return f"Question: {ex.question}\nAnswer: {ex.answer}"


def _pad_id(tokenizer) -> int:
    for t in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if t is not None:
            return int(t)
    return 0


def left_pad(ids: list[int], seq_len: int, pad: int) -> list[int]:
    ids = ids[:seq_len]
    return [pad] * (seq_len - len(ids)) + ids


def formatted(source: str, fmt: str, tokenizer, n_samples: int, seq_len: int, seed: int, **kw) -> torch.Tensor:
    """``n_samples × seq_len`` token ids of a downstream source in a format (module docstring)."""
    check(source, fmt)
    kind, k = parse_format(fmt)
    examples = EXAMPLES.get(source)(seed=seed, **kw)
    pad = _pad_id(tokenizer)
    rng = random.Random(seed)
    out = torch.empty(n_samples, seq_len, dtype=torch.long)
    for s in range(n_samples):
        if kind in ("zero", "single", "icl"):
            count = k if kind == "icl" else 1
            text = "\n\n".join(render(next(examples), kind) for _ in range(count))
            ids = tokenizer(text, add_special_tokens=True).input_ids
            out[s] = torch.tensor(left_pad(ids, seq_len, pad))
        else:  # concat / cot: pairs past the window, then a random window
            ids: list[int] = []
            while len(ids) <= seq_len:
                ids += tokenizer(render(next(examples), kind) + "\n\n", add_special_tokens=False).input_ids
            i = rng.randrange(0, len(ids) - seq_len)
            out[s] = torch.tensor(ids[i : i + seq_len])
    return out


# ------------------------------------------------------------ offline sources


def _offline(task: str):
    def gen(seed: int, tasks: dict | None = None, **_) -> Iterator[Example]:
        from compbench.tasks import train_items

        t = tasks or {}
        for item in train_items(task, t.get("eval_items", 200), t.get("seed", 0), f"calibration-{seed}"):
            yield Example(item.question, item.answer, item.rationale)

    return gen


for _task in ("arith", "facts", "continuation"):
    EXAMPLES.register(_task)(_offline(_task))


def random_text(n_chars: int, seed: int) -> str:
    """Random 'words' of 1–10 random lowercase letters (the random-string control)."""
    rng = random.Random(seed)
    words, total = [], 0
    while total < n_chars:
        w = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 10)))
        words.append(w)
        total += len(w) + 1
    return " ".join(words)


@SOURCES.register("random")
def _random(tokenizer, n_samples, seq_len, seed, **_):
    from compbench.tokenizer import encode_stream

    # ~3 characters per token for random letters; grow until long enough
    n_chars = 4 * seq_len * (n_samples + 1)
    while True:
        ids = encode_stream(tokenizer, random_text(n_chars, seed))
        if ids.numel() > seq_len:
            return windows_from_stream(ids, n_samples, seq_len, seed)
        n_chars *= 2


# --------------------------------------------------------- Hugging Face sources


def _load(hf_id: str, *args, **kw):
    from datasets import load_dataset

    try:
        return load_dataset(hf_id, *args, **kw)
    except Exception as e:  # network / offline / script errors come in many types
        what = ", ".join([hf_id, *map(str, args)] + [f"{k}={v}" for k, v in kw.items()])
        raise RuntimeError(f"could not load calibration data {what} from the Hugging Face hub: {e}") from e


def _stream_source(name: str, hf_id: str, config: str | None, field: str):
    """A streamed pre-training corpus: random documents longer than the window, a random window of each (Wanda's get_c4)."""

    @SOURCES.register(name)
    def windows(tokenizer, n_samples, seq_len, seed, **_):
        ds = _load(hf_id, *([config] if config else []), split="train", streaming=True).shuffle(seed=seed, buffer_size=10_000)
        rng = random.Random(seed)
        out = []
        for row in ds:
            ids = tokenizer(row[field], return_tensors="pt").input_ids[0]
            if ids.numel() > seq_len:
                i = rng.randint(0, ids.numel() - seq_len - 1)
                out.append(ids[i : i + seq_len])
                if len(out) == n_samples:
                    return torch.stack(out)
        raise RuntimeError(f"calibration source {name!r} ({hf_id}): fewer than {n_samples} documents longer than {seq_len} tokens")

    return windows


_stream_source("pile", "monology/pile-uncopyrighted", None, "text")
_stream_source("oscar", "oscar", "unshuffled_deduplicated_en", "text")
_stream_source("redpajama", "togethercomputer/RedPajama-Data-V2", "sample", "raw_content")


def _hf_examples(name: str, hf_id: str, config: str | None, split: str, to_example: Callable[[dict], Example | None]):
    @EXAMPLES.register(name)
    def gen(seed: int, **_) -> Iterator[Example]:
        ds = _load(hf_id, *([config] if config else []), split=split).shuffle(seed=seed)
        epoch = 0
        while True:
            for row in ds:
                try:
                    ex = to_example(row)
                except (KeyError, IndexError, ValueError) as e:
                    raise RuntimeError(f"calibration source {name!r} ({hf_id}): unexpected row layout ({e!r})") from e
                if ex is not None:
                    yield ex
            epoch += 1
            ds = ds.shuffle(seed=seed + epoch)

    return gen


def _gsm8k(r):
    rationale, _, label = r["answer"].partition("####")
    return Example(r["question"], label.strip(), re.sub(r"<<[^>]*>>", "", rationale).strip().replace("\n", " "))


def _fmt_num(x) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


NLI_LABELS = ("True", "Neither", "False")  # entailment, neutral, contradiction


def _nli(explanation_field):
    def conv(r):
        if r["label"] not in (0, 1, 2):
            return None
        q = f"{r['premise']}\n{r['hypothesis']} True, False, or Neither?"
        return Example(q, NLI_LABELS[r["label"]], (r.get(explanation_field) or "").strip() or None)

    return conv


_hf_examples("gsm8k", "openai/gsm8k", "main", "train", _gsm8k)
_hf_examples(
    "svamp",
    "ChilleD/SVAMP",
    None,
    "train",
    lambda r: Example(f"{r['Body']} {r['Question']}", _fmt_num(r["Answer"]), f"{r['Equation'].strip()} = {_fmt_num(r['Answer'])}"),
)
_hf_examples(
    "mawps",
    "MU-NLPC/Calc-mawps",
    None,
    "train",
    lambda r: Example(r["question"], _fmt_num(r["result_float"]), f"{r['equation']} = {_fmt_num(r['result_float'])}"),
)
_hf_examples("esnli", "esnli", None, "train", _nli("explanation_1"))
_hf_examples("anli_r1", "facebook/anli", None, "train_r1", _nli("reason"))
_hf_examples("anli_r3", "facebook/anli", None, "train_r3", _nli("reason"))
_hf_examples(
    "commonsense_qa",
    "tau/commonsense_qa",
    None,
    "train",
    lambda r: Example(r["question"], r["choices"]["text"][r["choices"]["label"].index(r["answerKey"])]),
)
_hf_examples(
    "race", "ehovy/race", "all", "train", lambda r: Example(f"{r['article']}\n{r['question']}", r["options"]["ABCD".index(r["answer"])])
)
_hf_examples(
    "winogrande",
    "allenai/winogrande",
    "winogrande_xl",
    "train",
    lambda r: Example(f"{r['sentence']} What does the blank refer to?", r[f"option{r['answer']}"]),
)

"""Token streams of the two training regimes, by data source name.

* ``tiny`` (embedded corpus, offline): the fine-tuning regime trains on the
  *validation* split of every corpus source (text the spine's pretraining never
  saw) and monitors the *test* split; the pre-training regime trains on the train
  split and monitors the validation split. Final perplexity is always on the test
  split, with the spine's protocol (:func:`compbench.perplexity.evaluate`).
* ``c4`` (Hugging Face ``allenai/c4``, ``en``): GaLore / Q-GaLore's pre-training
  data. Train: the first ``n_documents`` of train shard 0; monitor and test: the
  validation shard 0 (``compbench.perplexity.c4``). Fails with a message naming the
  data set when the hub is unreachable.
"""

from __future__ import annotations

from compbench.registry import Registry

# name -> fn(regime, spec, corpus_dir) -> {"train": text, "monitor": text, "test": text}
DATA: Registry = Registry("memtrain data source")


@DATA.register("tiny")
def tiny(regime: str, spec: dict, corpus_dir=None) -> dict[str, str]:
    from compbench.corpus import read_split

    if corpus_dir is None:
        raise ValueError("memtrain data 'tiny' needs the corpus directory")

    def split(name):
        return "\n\n".join(read_split(corpus_dir, s, name).strip() for s in spec["sources"])

    from compbench.perplexity import tiny as spine_test

    train, monitor = ("validation", "test") if regime == "finetune" else ("train", "validation")
    # the test text exactly as the spine's perplexity rule builds it (same documents, same joins)
    return {"train": split(train), "monitor": split(monitor), "test": spine_test({"sources": spec["sources"]}, corpus_dir)}


@DATA.register("c4")
def c4(regime: str, spec: dict, corpus_dir=None) -> dict[str, str]:
    from datasets import load_dataset

    from compbench.perplexity import c4 as c4_validation

    files = {"train": "en/c4-train.00000-of-01024.json.gz"}
    try:
        ds = load_dataset("allenai/c4", data_files=files, split="train")
    except Exception as e:  # offline / hub errors come in many types
        raise RuntimeError(f"could not load data set 'allenai/c4' ({files['train']}) from the Hugging Face hub: {e}") from e
    n = int(spec.get("n_documents", 20000))
    val = c4_validation({"n_documents": spec.get("eval_documents", 1100)})
    return {"train": "\n\n".join(ds[:n]["text"]), "monitor": val, "test": val}

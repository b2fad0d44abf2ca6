"""Byte-level BPE tokenizer trained here with ``tokenizers``.

Saved as a ``PreTrainedTokenizerFast`` so that ``AutoTokenizer.from_pretrained``
and lm-eval load it like any hub tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"


def train(texts: Iterable[str], vocab_size: int, min_frequency: int = 2):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[BOS, EOS, PAD, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos = tok.token_to_id(BOS)
    # Like LLaMA: a BOS token in front of every encoded sequence.
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK, model_max_length=1_000_000
    )


def save(tokenizer, out_dir: str | Path) -> None:
    from compbench.artifacts import atomic_path

    with atomic_path(out_dir) as tmp:
        tokenizer.save_pretrained(str(tmp))


def load(path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def encode_stream(tokenizer, text: str):
    """Tokenise a whole text once (one BOS in front), as the perplexity protocol does."""
    import torch

    ids = tokenizer(text, return_tensors="pt", add_special_tokens=True).input_ids[0]
    return ids.to(torch.long)

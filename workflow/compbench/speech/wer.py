"""Edit distance, WER and CER (Levenshtein: substitutions + deletions + insertions)."""

from __future__ import annotations


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance between two sequences (torchaudio.functional.edit_distance
    computes the same; this one is dependency-free and used everywhere here)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def error_rates(refs: list[str], hyps: list[str]) -> dict:
    """Corpus-level WER = sum(word edits) / sum(reference words); CER alike over characters
    (spaces included)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    we = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps))
    nw = sum(len(r.split()) for r in refs)
    ce = sum(edit_distance(list(r), list(h)) for r, h in zip(refs, hyps))
    nc = sum(len(r) for r in refs)
    if nw == 0:
        raise ValueError("no reference words: WER undefined")
    return {"wer": we / nw, "cer": ce / max(nc, 1), "word_errors": we, "ref_words": nw, "char_errors": ce, "ref_chars": nc}


def per_utterance(refs: list[str], hyps: list[str]) -> list[dict]:
    """Word and character errors and reference lengths of every utterance: the per-item
    results behind the corpus-level rates (``error_rates`` = their sums' ratios), which the
    intervals resample (compbench.stats, compbench.speech.summary)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    return [
        {
            "word_errors": edit_distance(r.split(), h.split()),
            "ref_words": len(r.split()),
            "char_errors": edit_distance(list(r), list(h)),
            "ref_chars": len(r),
        }
        for r, h in zip(refs, hyps)
    ]

"""DDP-ASR: dynamic data pruning for ASR (Xiao et al., Interspeech 2024).

Every ``every_epochs`` epochs (after ``warmup_epochs`` full epochs) the training items are scored
by their latest per-token CTC loss and only a fraction ``k`` is kept for the next epoch(s)
(paper: k = 70 % reaches the full-data WER). Items are

* whole utterances (``granularity: utterance``), trained against their transcripts; or
* segments of utterances (``granularity: segment``): every utterance is cut at word boundaries
  (its word alignment, manifest column ``word_starts``) into segments of at least ``segment_s``
  seconds, each holding whole words (:func:`word_segments`). A kept segment is an example of its
  own: its frames are trained against the words aligned to it -- never against the utterance's
  whole transcript, which would no longer match the audio -- and its score is the loss of that
  example. Pruned segments are never computed.

Both granularities score an item by the same quantity, its per-token CTC loss (the loss of the
item's latest forward pass, ``rescore: trained``, free; or of a fresh forward pass over all items
before each selection, ``rescore: all``, whose audio seconds are counted separately).

Selection rules (``SELECT`` registry), each keeping exactly ``round(k * n)`` items (at least 1):

* ``random``          uniformly random subset every time (the paper's random dynamic pruning);
* ``loss_topk``       the ``k n`` items with the highest score (loss);
* ``epsilon_greedy``  ``round((1 - eps) k n)`` highest-score items plus the rest uniformly at random
  from the others (Raju et al. 2021's epsilon-greedy dynamic pruning; DDP-ASR's default here).

Never-scored items (NaN) rank first. ``max_skip`` > 0 forces in every item skipped that many
selections in a row, so no item is dropped forever even when scores never change.
"""

from __future__ import annotations

import numpy as np

from compbench.registry import Registry

SELECT: Registry = Registry("DDP selection rule")


def n_keep(n: int, fraction: float) -> int:
    if not 0 < fraction <= 1:
        raise ValueError(f"speech.variants.ddp kept fraction {fraction} outside (0, 1]")
    return max(1, min(n, int(np.floor(fraction * n + 0.5))))


def _order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score, NaN (never scored) first, ties by index."""
    s = np.where(np.isnan(scores), np.inf, scores)
    return np.lexsort((np.arange(len(s)), -s))


@SELECT.register("random")
def _random(scores, k, rng, epsilon=0.0):
    return rng.choice(len(scores), size=k, replace=False)


@SELECT.register("loss_topk")
def _topk(scores, k, rng, epsilon=0.0):
    return _order(scores)[:k]


@SELECT.register("epsilon_greedy")
def _eps_greedy(scores, k, rng, epsilon=0.2):
    greedy = int(np.floor((1 - epsilon) * k + 0.5))
    order = _order(scores)
    rest = order[greedy:]
    return np.concatenate([order[:greedy], rng.choice(rest, size=k - greedy, replace=False)]).astype(int)


class Selector:
    """Stateful selection: remembers how many selections in a row each item was skipped."""

    def __init__(self, n_items: int, fraction: float, rule: str, epsilon: float = 0.2, max_skip: int = 0, seed: int = 0):
        self.n, self.k = n_items, n_keep(n_items, fraction)
        self.rule, self.fn, self.epsilon, self.max_skip = rule, SELECT.get(rule), epsilon, max_skip
        self.rng = np.random.default_rng(seed)
        self.skipped = np.zeros(n_items, dtype=int)

    def select(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=float)
        if len(scores) != self.n:
            raise ValueError(f"{len(scores)} scores for {self.n} items")
        forced = np.flatnonzero(self.skipped >= self.max_skip) if self.max_skip > 0 else np.array([], dtype=int)
        forced = forced[np.argsort(-self.skipped[forced], kind="stable")][: self.k]  # longest-skipped first
        if len(forced) < self.k:
            rest = np.setdiff1d(np.arange(self.n), forced)
            picked = rest[self.fn(scores[rest], self.k - len(forced), self.rng, self.epsilon)]
            keep = np.concatenate([forced, picked])
        else:
            keep = forced
        keep = np.sort(keep.astype(int))
        assert len(keep) == self.k and len(np.unique(keep)) == self.k
        mask = np.zeros(self.n, dtype=bool)
        mask[keep] = True
        self.skipped = np.where(mask, 0, self.skipped + 1)
        return keep


def word_segments(word_frames: list[int], n_frames: int, seg_frames: int) -> list[tuple[int, int, int, int]]:
    """Cut an utterance of ``n_frames`` frames at word starts into segments of at least
    ``seg_frames`` frames (the last one may be shorter): a new segment begins at the first word
    that starts ``seg_frames`` or more after the current segment's start, and a last segment
    shorter than half a segment is merged into the previous one; two words with the same start
    (spoken as one) are never separated. ``word_frames`` = the start frame of every word. Returns (start frame, end frame, first word, end word) per
    segment; the first segment starts at frame 0 and the last ends at ``n_frames``, so the
    segments tile the utterance and each word belongs to the one segment its start lies in."""
    if seg_frames <= 0:
        raise ValueError(f"speech.variants.ddp.segment_s gives {seg_frames} frames; it must be positive")
    if any(b < a for a, b in zip(word_frames, word_frames[1:])):
        raise ValueError(f"word start frames must be non-decreasing, got {list(word_frames)}")
    n = len(word_frames)
    cuts, start = [0], 0
    for i in range(1, n):
        if word_frames[i] - start >= seg_frames and word_frames[i - 1] < word_frames[i] < n_frames:
            cuts.append(i)
            start = word_frames[i]
    if len(cuts) > 1 and n_frames - word_frames[cuts[-1]] < seg_frames / 2:
        cuts.pop()
    frames = [0] + [word_frames[c] for c in cuts[1:]] + [n_frames]
    words = cuts + [n]
    return [(frames[j], frames[j + 1], words[j], words[j + 1]) for j in range(len(cuts))]

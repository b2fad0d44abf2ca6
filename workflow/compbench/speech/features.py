"""Log-mel features (torchaudio.transforms.MelSpectrogram), SpecAugment, and output units.

Features of every utterance are computed once and stored concatenated in one safetensors
file per corpus: ``feats`` [total_frames, n_mels] and ``offsets`` [n_utts + 1]; the manifest
order defines the rows. Each utterance is mean/variance normalised (per mel bin).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

BLANK = "<blank>"


def mel_transform(spec: dict, sample_rate: int):
    import torchaudio.transforms as T

    return T.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=int(round(sample_rate * spec["win_ms"] / 1000)),
        win_length=int(round(sample_rate * spec["win_ms"] / 1000)),
        hop_length=int(round(sample_rate * spec["hop_ms"] / 1000)),
        n_mels=spec["n_mels"],
    )


def log_mel(audio: np.ndarray, mel) -> torch.Tensor:
    """[frames, n_mels] log-mel, normalised per utterance."""
    m = mel(torch.as_tensor(audio, dtype=torch.float32)).clamp_min(1e-10).log().T
    return (m - m.mean(0)) / (m.std(0) + 1e-5)


def compute(manifest, root: str | Path, spec: dict, sample_rate: int) -> dict[str, torch.Tensor]:
    from tqdm import tqdm

    from compbench.speech.corpora import read_wav

    mel = mel_transform(spec, sample_rate)
    feats, offsets = [], [0]
    for p in tqdm(manifest["path"], desc="log-mel", mininterval=5):
        audio, sr = read_wav(Path(root) / p)
        if sr != sample_rate:
            raise ValueError(f"{p}: sample rate {sr}, expected {sample_rate}")
        f = log_mel(audio, mel)
        feats.append(f)
        offsets.append(offsets[-1] + len(f))
    return {"feats": torch.cat(feats), "offsets": torch.tensor(offsets, dtype=torch.int64)}


def spec_augment(x: torch.Tensor, spec: dict, generator: torch.Generator | None = None) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) on a batch [B, T, F]: frequency and time masks
    (torchaudio.transforms.FrequencyMasking / TimeMasking, masks filled with 0 = the mean)."""
    import torchaudio.transforms as T

    if not spec or (not spec.get("freq_mask") and not spec.get("time_mask")):
        return x
    y = x.transpose(1, 2)  # [B, F, T]
    if spec.get("freq_mask"):
        for _ in range(spec.get("n_freq_masks", 1)):
            y = T.FrequencyMasking(spec["freq_mask"], iid_masks=True)(y)
    if spec.get("time_mask"):
        for _ in range(spec.get("n_time_masks", 1)):
            y = T.TimeMasking(spec["time_mask"], iid_masks=True)(y)
    return y.transpose(1, 2)


# ---------------------------------------------------------------- output units
def vocabulary(texts, units: str) -> list[str]:
    """Output symbols: index 0 is the CTC blank; then words (units=word) or characters."""
    if units == "word":
        symbols = sorted({w for t in texts for w in t.split()})
    elif units == "char":
        symbols = sorted({c for t in texts for c in t})
    else:
        raise ValueError(f"speech.units={units!r}; allowed: word, char")
    return [BLANK] + symbols


def encode(text: str, vocab: list[str], units: str) -> list[int]:
    index = {s: i for i, s in enumerate(vocab)}
    pieces = text.split() if units == "word" else list(text)
    try:
        return [index[p] for p in pieces]
    except KeyError as e:
        raise ValueError(f"symbol {e.args[0]!r} of {text!r} is not in the training vocabulary") from None


def decode(ids: list[int], vocab: list[str], units: str) -> str:
    pieces = [vocab[i] for i in ids if i != 0]
    return " ".join(pieces) if units == "word" else " ".join("".join(pieces).split())

"""Log-mel features, SpecAugment, and output units.

Features of every utterance are computed once and stored concatenated in one safetensors
file per corpus: ``feats`` [total_frames, n_mels] and ``offsets`` [n_utts + 1]; the manifest
order defines the rows. Each utterance is mean/variance normalised (per mel bin).

The log-mel is torchaudio.transforms.MelSpectrogram's (periodic Hann window, centred frames with
reflect padding, power 2, HTK mel filterbank without normalisation; equal to it within 1e-4 after
normalisation), computed in float64 with numpy and stored as float32: torch's version uses
CPU-specific kernels (the filterbank's vectorised math, MKL's matrix product), so its features
differed between CPUs; these do not (docs/speech.md, "Reproducibility").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

BLANK = "<blank>"


def frame_sizes(spec: dict, sample_rate: int) -> tuple[int, int]:
    """(window = FFT length, hop) in samples."""
    return int(round(sample_rate * spec["win_ms"] / 1000)), int(round(sample_rate * spec["hop_ms"] / 1000))


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int) -> np.ndarray:
    """[n_freqs, n_mels] HTK triangular filters from 0 Hz to Nyquist (torchaudio's melscale_fbanks, norm None), float64."""
    freqs = np.linspace(0, sample_rate // 2, n_freqs)
    m_max = 2595.0 * np.log10(1.0 + (sample_rate / 2) / 700.0)
    f_pts = 700.0 * (10.0 ** (np.linspace(0.0, m_max, n_mels + 2) / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - freqs[:, None]
    down, up = -slopes[:, :-2] / f_diff[:-1], slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


def log_mel(audio: np.ndarray, spec: dict, sample_rate: int) -> torch.Tensor:
    """[frames, n_mels] log-mel, normalised per utterance (mean 0, unbiased sd 1 per mel bin)."""
    n_fft, hop = frame_sizes(spec, sample_rate)
    x = np.pad(np.asarray(audio, dtype=np.float64), (n_fft // 2, n_fft // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    z = np.fft.rfft(frames * window, axis=1)
    power = z.real**2 + z.imag**2
    fb = mel_filterbank(n_fft // 2 + 1, spec["n_mels"], sample_rate)
    mel = (power[:, :, None] * fb[None, :, :]).sum(1)  # elementwise and summed in order: no BLAS
    m = np.log(np.maximum(mel, 1e-10))
    out = (m - m.mean(0)) / (m.std(0, ddof=1) + 1e-5)
    return torch.from_numpy(out.astype(np.float32))


def compute(manifest, root: str | Path, spec: dict, sample_rate: int) -> dict[str, torch.Tensor]:
    from tqdm import tqdm

    from compbench.speech.corpora import read_wav

    feats, offsets = [], [0]
    for p in tqdm(manifest["path"], desc="log-mel", mininterval=5):
        audio, sr = read_wav(Path(root) / p)
        if sr != sample_rate:
            raise ValueError(f"{p}: sample rate {sr}, expected {sample_rate}")
        f = log_mel(audio, spec, sample_rate)
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

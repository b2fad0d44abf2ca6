"""ASR corpora: a registry of sources, each writing a manifest (one row per utterance).

Manifest columns: ``id, split, path, text, voice, seconds`` (+ synthesis settings for the
synthetic corpus), and ``word_starts`` where word alignments are known (a JSON list, the start
time in seconds of every word of ``text``; DDP-ASR's segment granularity needs it). Splits are
``train``, ``dev``, ``test``.

* ``synthetic`` (embedded default, offline): word sequences over a small vocabulary spoken by
  Debian's ``espeak-ng`` with varied voices (accent x variant), speed, pitch and word gap, then
  speed perturbation (resampling) and additive white noise at a random SNR. Train/dev/test are
  split **by voice**: dev and test voices never occur in train.
  Word start times come from espeak-ng's own word events (exact alignments).
* ``librispeech`` (real): a LibriSpeech tree on disk (``path``: ``<root>/<subset>/<spk>/<chapter>/``
  with ``*.trans.txt`` and FLAC files) or a Hugging Face dataset id (``hf_id``). FLAC decoding needs
  ``soundfile``; neither is needed by the embedded default. Word start times from forced
  alignments in the librispeech-alignments format (``alignments``: a tree of
  ``<subset>/<spk>/<chapter>/<spk>-<chapter>.alignment.txt``, Montreal Forced Aligner output), optional.

WAV files are written and read with the standard library's ``wave`` module (16-bit PCM mono):
torchaudio >= 2.9 moved audio loading to torchcodec, which this project does not install.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import math
import random
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pandas as pd

from compbench.registry import Registry

CORPORA: Registry = Registry("ASR corpus source")
SPLITS = ("train", "dev", "test")


class MissingTool(RuntimeError):
    """A system program or optional package a corpus needs is not installed."""


# ---------------------------------------------------------------- WAV I/O (standard library)
def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio in [-1, 1] as 16-bit PCM mono."""
    pcm = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0)
    pcm = np.round(pcm * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())


def _pcm_to_float(raw: bytes, sampwidth: int, channels: int) -> np.ndarray:
    if sampwidth != 2:
        raise ValueError(f"only 16-bit PCM WAV is supported, got {8 * sampwidth}-bit")
    x = np.frombuffer(raw[: len(raw) // (2 * channels) * 2 * channels], dtype="<i2").astype(np.float32) / 32768.0
    return x.reshape(-1, channels).mean(axis=1) if channels > 1 else x


def read_wav(path_or_bytes) -> tuple[np.ndarray, int]:
    """Read a PCM WAV (file path or bytes) -> (float32 mono audio, sample rate).

    Streams written by ``espeak-ng --stdout`` carry a placeholder length (0x7fffffff);
    reading up to the end of the data handles them."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else str(path_or_bytes)
    with wave.open(src, "rb") as w:
        sr, ch, sw = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    return _pcm_to_float(raw, sw, ch), sr


@functools.lru_cache(maxsize=8)
def _sinc_kernel(orig: int, new: int, zeros: int = 6, rolloff: float = 0.99) -> tuple[np.ndarray, int, int, int]:
    """torchaudio's ``sinc_interp_hann`` resampling filters (``_get_sinc_resample_kernel``), in float64:
    one filter [new', 2 width + orig'] per output phase, orig' / new' the rates divided by their gcd."""
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    base = min(o, n) * rolloff
    width = math.ceil(zeros * o / base)
    t = np.arange(0, -n, -1, dtype=np.float64)[:, None] / n + np.arange(-width, width + o, dtype=np.float64)[None, :] / o
    t = np.clip(t * base, -zeros, zeros)
    window = np.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(t == 0, 1.0, np.sin(t) / t)
    return k * window * (base / o), width, o, n


def resample(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """Band-limited resampling from ``orig`` to ``new`` Hz: torchaudio.functional.resample's algorithm
    (windowed sinc, 6 zero crossings, roll-off 0.99; equal to it within 5e-5), computed in float64 with
    numpy's own loops (``einsum``, no BLAS): the same samples on every CPU and thread count, where
    torch's convolution kernels depend on the CPU (docs/speech.md, "Reproducibility")."""
    if orig == new:
        return np.asarray(x, dtype=np.float32)
    k, width, o, n = _sinc_kernel(int(orig), int(new))
    x = np.asarray(x, dtype=np.float64)
    blocks = np.lib.stride_tricks.sliding_window_view(np.pad(x, (width, width + o)), k.shape[1])[::o]
    y = np.einsum("bj,cj->bc", blocks, k).reshape(-1)
    return y[: math.ceil(n * len(x) / o)].astype(np.float32)


# ---------------------------------------------------------------- synthetic corpus (espeak-ng)
def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingTool(
            "the synthetic speech corpus needs the Debian package `espeak-ng` (program espeak-ng not found on PATH); "
            "install it with `apt-get install espeak-ng` (workflow/run.sh does so when run as root, "
            "see workflow/system-packages.txt), or use speech.corpus.source: librispeech"
        )
    return exe


def espeak(text: str, voice: str, speed: int, pitch: int, gap: int) -> tuple[np.ndarray, int]:
    """Speak ``text`` with the espeak-ng program: voice ``accent+variant``, speed in words/min,
    pitch 0-99, word gap in units of 10 ms. Returns (audio, sample rate). The corpus uses
    :func:`espeak_words` (the same synthesis through the library, plus word times); this is the
    reference it is tested against."""
    cmd = [espeak_binary(), "-v", voice, "-s", str(int(speed)), "-p", str(int(pitch)), "-g", str(int(gap)), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        raise RuntimeError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace')[-500:]}")
    return read_wav(proc.stdout)


def espeak_words(text: str, voice: str, speed: int, pitch: int, gap: int) -> tuple[np.ndarray, int, list[int]]:
    """:func:`espeak` (the program's audio, unchanged) plus the sample index at which each word
    starts: espeak-ng's WORD events of the same synthesis through libespeak-ng, in a fresh process
    (:mod:`compbench.speech.espeak_lib`), whose length must equal the program's to the sample. The
    corpus's word alignment, exact by construction (LibriSpeech needs forced alignments for it)."""
    from compbench.speech import espeak_lib

    audio, sr = espeak(text, voice, speed, pitch, gap)
    cmd = [sys.executable, espeak_lib.__file__, voice, str(int(speed)), str(int(pitch)), str(int(gap)), text]
    proc = subprocess.run(cmd, capture_output=True, timeout=60, text=True)
    if proc.returncode != 0:
        raise MissingTool(f"espeak-ng word times (libespeak-ng via ctypes) failed: {proc.stderr.strip()[-500:]}")
    got = json.loads(proc.stdout)
    if (got["sr"], got["n_samples"]) != (sr, len(audio)):
        raise RuntimeError(
            f"espeak-ng library gave {got['n_samples']} samples at {got['sr']} Hz for {text!r}, the program {len(audio)} at {sr}"
        )
    return audio, sr, word_samples(text, got["words"])


def word_samples(text: str, events: list) -> list[int]:
    """Start sample of every word of ``text`` from espeak-ng's WORD events ([text position
    (1-based character index), sample]). espeak-ng speaks some word pairs as one (e.g. "no one"):
    a word without an event of its own starts where the word before it does (so no segment
    boundary can fall between them)."""
    starts, pos = [], 0
    for w in text.split(" "):
        starts.append(pos + 1)  # 1-based character index of the word's start
        pos += len(w) + 1
    at = dict((p, s) for p, s in events)
    if not events or starts[0] not in at:
        raise RuntimeError(f"espeak-ng word events {events} do not start at the first word of {text!r}")
    out = []
    for p in starts:
        out.append(at.get(p, out[-1] if out else 0))
    if any(b < a for a, b in zip(out, out[1:])):
        raise RuntimeError(f"espeak-ng word events {events} of {text!r} are out of order")
    return out


def voices(accents: list[str], variants: list[str]) -> list[str]:
    return [f"{a}+{v}" for a, v in itertools.product(accents, variants)]


def split_voices(all_voices: list[str], held_out: dict, seed: int) -> dict[str, list[str]]:
    """Disjoint voice sets per split: ``held_out`` = {dev: n, test: n}; the rest train."""
    n_dev, n_test = int(held_out.get("dev", 0)), int(held_out.get("test", 0))
    if n_dev + n_test >= len(all_voices):
        raise ValueError(f"speech.corpus.held_out_voices dev={n_dev} + test={n_test} leaves no training voice out of {len(all_voices)}")
    rng = random.Random(seed)
    order = sorted(all_voices)
    rng.shuffle(order)
    return {"test": sorted(order[:n_test]), "dev": sorted(order[n_test : n_test + n_dev]), "train": sorted(order[n_test + n_dev :])}


def sample_utterance(rng: random.Random, spec: dict, voice_pool: list[str]) -> dict:
    lo, hi = spec["words"]
    words = [rng.choice(spec["vocabulary"]) for _ in range(rng.randint(lo, hi))]
    return {
        "text": " ".join(words),
        "voice": rng.choice(voice_pool),
        "speed": rng.randint(*spec["speed"]),
        "pitch": rng.randint(*spec["pitch"]),
        "gap": rng.randint(*spec["word_gap"]),
        "perturb": round(rng.uniform(*spec["speed_perturb"]), 4),
        "snr_db": round(rng.uniform(*spec["snr_db"]), 2),
        "noise_seed": rng.randrange(2**31),
    }


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation by resampling (linear interpolation): ``factor`` > 1 is faster and
    higher, like Kaldi's speed perturbation (sox ``speed``)."""
    if factor == 1:
        return x
    n = int(round(len(x) / factor))
    return np.interp(np.arange(n) * factor, np.arange(len(x)), x).astype(np.float32)


def render(u: dict, sample_rate: int) -> tuple[np.ndarray, list[float]]:
    """espeak-ng -> resample to ``sample_rate`` -> speed perturbation by ``perturb`` -> white
    noise at ``snr_db`` -> peak-normalise to 0.9. Returns the audio and the start time (s) of
    every word in it (espeak-ng's word events, moved by the speed perturbation)."""
    audio, sr, starts = espeak_words(u["text"], u["voice"], u["speed"], u["pitch"], u["gap"])
    audio = speed_perturb(resample(audio, sr, sample_rate), u["perturb"])
    power = float(np.mean(audio**2)) + 1e-12
    noise = np.random.default_rng(u["noise_seed"]).standard_normal(len(audio)).astype(np.float32)
    audio = audio + noise * np.sqrt(power / 10 ** (u["snr_db"] / 10))
    word_s = [round(s / sr / u["perturb"], 4) for s in starts]
    return (0.9 * audio / (np.abs(audio).max() + 1e-9)).astype(np.float32), word_s


def _write_utterance(out_dir: Path, uid: str, split: str, audio: np.ndarray, sr: int, **columns) -> dict:
    """Write one utterance as ``wav/<uid>.wav`` under ``out_dir``; its manifest row."""
    path = Path(out_dir) / "wav" / f"{uid}.wav"
    write_wav(path, audio, sr)
    return {"id": uid, "split": split, "path": str(path.relative_to(out_dir)), "seconds": round(len(audio) / sr, 4), **columns}


@CORPORA.register("synthetic")
def synthetic(spec: dict, out_dir: Path, log=None, workers: int = 1) -> pd.DataFrame:
    """``workers`` utterances are synthesised at a time (threads: each is two subprocesses,
    espeak-ng and its word events); every utterance is drawn up front and seeds its own noise,
    so the corpus is the same bytes for any ``workers``."""
    espeak_binary()  # fail fast, naming the package
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    rng = random.Random(spec["seed"])
    by_split = split_voices(voices(spec["accents"], spec["variants"]), spec["held_out_voices"], spec["seed"])
    rows = []
    (Path(out_dir) / "wav").mkdir(parents=True, exist_ok=True)
    plan = []
    for split in SPLITS:
        for i in range(int(spec["n_utterances"][split])):
            plan.append((split, f"{split}-{i:05d}", sample_utterance(rng, spec, by_split[split])))
    sr = int(spec["sample_rate"])
    with ThreadPoolExecutor(max(1, int(workers))) as pool:
        rendered = pool.map(lambda item: render(item[2], sr), plan)
        for (split, uid, u), (audio, word_s) in tqdm(zip(plan, rendered), total=len(plan), desc="espeak-ng", mininterval=5):
            rows.append(_write_utterance(out_dir, uid, split, audio, sr, **u, word_starts=json.dumps(word_s)))
    if log:
        for s in SPLITS:
            log.info("%s voices (%d): %s", s, len(by_split[s]), ", ".join(by_split[s]))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- LibriSpeech (real)
def read_flac(path: str | Path) -> tuple[np.ndarray, int]:
    try:
        import soundfile  # optional: only the real path decodes FLAC
    except ImportError:
        raise MissingTool(f"{path}: reading LibriSpeech FLAC needs the Python package `soundfile` (pip install soundfile)") from None
    x, sr = soundfile.read(str(path), dtype="float32")
    return (x.mean(axis=1) if x.ndim > 1 else x), sr


@CORPORA.register("librispeech")
def librispeech(spec: dict, out_dir: Path, log=None, workers: int = 1) -> pd.DataFrame:
    """LibriSpeech by path (official tree) or by HF id; audio converted to 16 kHz WAV here, one
    utterance at a time (``workers`` is for :func:`synthetic`: reading is I/O-bound here)."""
    rows = []
    (Path(out_dir) / "wav").mkdir(parents=True, exist_ok=True)
    sr_out = int(spec["sample_rate"])
    limit = spec.get("max_utterances") or None
    aligned = read_alignments(spec["alignments"]) if spec.get("alignments") else None
    for split in SPLITS:
        subsets = spec["splits"][split]
        subsets = [subsets] if isinstance(subsets, str) else subsets
        for subset in subsets:
            for uid, audio, sr, text, speaker in _librispeech_items(spec, subset):
                if limit and sum(r["split"] == split for r in rows) >= limit:
                    break
                starts = {"word_starts": json.dumps(_starts_for(aligned, uid, text))} if aligned is not None else {}
                rows.append(
                    _write_utterance(
                        out_dir, uid, split, resample(audio, sr, sr_out), sr_out, text=text.lower(), voice=str(speaker), **starts
                    )
                )
    if not rows:
        raise FileNotFoundError(f"speech.corpus: no LibriSpeech utterances found for splits {spec['splits']}")
    return pd.DataFrame(rows)


def parse_alignment_line(line: str) -> tuple[str, list[tuple[str, float]]]:
    """One line of the librispeech-alignments format: ``<uid> ",W1,,W2," "t1,t2,t3,t4,t5"`` with
    the *end* time of every interval, empty words being silences. Returns (uid, [(word, start)])."""
    try:
        uid, words, ends = line.split(" ")
        words, ends = words.strip('"').split(","), [float(t) for t in ends.strip('"').split(",")]
    except ValueError:
        raise ValueError(f"not a librispeech-alignments line: {line[:120]!r}") from None
    if len(words) != len(ends):
        raise ValueError(f"alignment of {uid}: {len(words)} intervals but {len(ends)} end times")
    starts = [0.0] + ends[:-1]
    return uid, [(w.lower(), s) for w, s in zip(words, starts) if w]


def read_alignments(root: str | Path) -> dict[str, list[tuple[str, float]]]:
    files = sorted(Path(root).glob("**/*.alignment.txt"))
    if not files:
        raise FileNotFoundError(f"speech.corpus.alignments: no *.alignment.txt under {root}")
    out = {}
    for f in files:
        for line in f.read_text().splitlines():
            if line.strip():
                uid, words = parse_alignment_line(line.strip())
                out[uid] = words
    return out


def _starts_for(aligned: dict, uid: str, text: str) -> list[float]:
    words = aligned.get(uid)
    if words is None:
        raise KeyError(f"speech.corpus.alignments has no alignment for utterance {uid}")
    if [w for w, _ in words] != text.lower().split():
        raise ValueError(f"alignment of {uid} has words {[w for w, _ in words]}, transcript {text.lower().split()}")
    return [round(s, 4) for _, s in words]


def _librispeech_items(spec: dict, subset: str):
    if spec.get("path"):
        root = Path(spec["path"]) / subset
        if not root.is_dir():
            raise FileNotFoundError(f"speech.corpus.path: {root} is not a directory (expected <path>/{subset}/<speaker>/<chapter>/)")
        for trans in sorted(root.glob("*/*/*.trans.txt")):
            for line in trans.read_text().splitlines():
                uid, _, text = line.partition(" ")
                audio, sr = read_flac(trans.parent / f"{uid}.flac")
                yield uid, audio, sr, text, uid.split("-")[0]
        return
    if not spec.get("hf_id"):
        raise ValueError("speech.corpus.source=librispeech needs speech.corpus.path or speech.corpus.hf_id")
    try:
        import datasets

        name, _, split = subset.partition(":")  # e.g. "clean:train.100"
        ds = datasets.load_dataset(spec["hf_id"], name or None, split=split or "train", streaming=True)
    except Exception as e:  # offline, unknown id, no audio decoder
        raise RuntimeError(f"speech.corpus.hf_id={spec['hf_id']!r} subset {subset!r} could not be loaded ({type(e).__name__}: {e})") from e
    for ex in ds:
        a = ex["audio"]
        yield str(ex["id"]), np.asarray(a["array"], dtype=np.float32), int(a["sampling_rate"]), ex["text"], ex.get("speaker_id", "")


def build(spec: dict, out_dir: str | Path, log=None, workers: int = 1) -> pd.DataFrame:
    return CORPORA.get(spec["source"])(spec, Path(out_dir), log=log, workers=workers)

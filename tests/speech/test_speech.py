"""Speech line: LR-SMS factorisation and rank schedule, DDP-ASR selection, MSRS masks and
stabilisation, WER/CER, Conformer pieces, espeak-ng synthesis, config checks, end to end."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from compbench import stats
from compbench.config import ConfigError, check
from compbench.speech import corpora, ddp, features, grid, lowrank, msrs, summary, train, wer
from compbench.speech import model as M
from conftest import ROOT

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng (Debian package) not installed: apt-get install espeak-ng"
)


# ---------------------------------------------------------------- LR-SMS
def test_factorized_full_rank_reproduces_dense_from_svd():
    torch.manual_seed(0)
    lin = nn.Linear(24, 16)
    f = lowrank.FactorizedLinear.from_linear(lin, rank=16, init="svd")
    x = torch.randn(5, 24)
    assert torch.allclose(f(x), lin(x), atol=1e-5)
    assert torch.allclose(f.U.weight @ f.V.weight, lin.weight, atol=1e-6)


def test_factorized_low_rank_is_eckart_young_optimum():
    torch.manual_seed(1)
    lin = nn.Linear(20, 12)
    s = torch.linalg.svdvals(lin.weight.detach().double())
    for r in (1, 3, 7):
        f = lowrank.FactorizedLinear.from_linear(lin, rank=r, init="svd")
        err = torch.linalg.matrix_norm((f.U.weight @ f.V.weight - lin.weight).double()) ** 2
        assert torch.isclose(err, (s[r:] ** 2).sum(), rtol=1e-4)
        assert f.U.weight.shape == (12, r) and f.V.weight.shape == (r, 20)


def test_factorized_random_init_and_bad_rank():
    lin = nn.Linear(8, 8)
    f = lowrank.FactorizedLinear.from_linear(lin, rank=2, init="random")
    assert torch.equal(f.U.bias, lin.bias)
    with pytest.raises(ValueError, match="rank 9 outside"):
        lowrank.FactorizedLinear(8, 8, 9)
    with pytest.raises(ValueError, match="allowed: svd, random"):
        lowrank.FactorizedLinear.from_linear(lin, 2, init="zeros")


def test_rank_schedule_linear_and_clamped():
    s = lowrank.linear_schedule(0.5, 0.1, 5)
    assert s[0] == 0.5 and abs(s[-1] - 0.1) < 1e-12
    assert np.allclose(np.diff(s), -0.1)
    assert lowrank.linear_schedule(0.3, 0.9, 1) == [0.3]
    assert lowrank.rank_for(0.25, 64, 128, 4) == 16
    assert lowrank.rank_for(0.01, 64, 128, 4) == 4  # min
    assert lowrank.rank_for(1.0, 64, 128, 4) == 64  # max = full rank
    assert lowrank.rank_for(0.5, 3, 128, 4) == 3  # min_rank never exceeds full rank


def small_model(layers=3, d=16):
    spec = dict(d_model=d, num_heads=2, ffn_dim=2 * d, num_layers=layers, conv_kernel=3, subsample_channels=4, dropout=0.0)
    torch.manual_seed(0)
    return M.build(spec, n_mels=16, vocab_size=5)


def test_factorize_model_ranks_per_type_and_layer():
    m = small_model(layers=3, d=16)
    ranks = lowrank.factorize(m, attn=[0.5, 0.25], ff=[1.0, 0.5], min_rank=1, init="svd")
    q = [ranks[f"encoder.conformer_layers.{i}.self_attn.q"] for i in range(3)]
    assert q == [8, 6, 4]  # 16 x (0.5, 0.375, 0.25), round half up
    ff = [ranks[f"encoder.conformer_layers.{i}.ffn1.sequential.1"] for i in range(3)]
    assert ff == [16, 12, 8]  # min(16, 32) x (1.0, 0.75, 0.5)
    assert len(ranks) == 3 * (4 + 4)


def test_factorize_full_rank_model_equals_dense():
    m = small_model(layers=2)
    m.eval()
    x, lens = torch.randn(2, 30, 16), torch.tensor([30, 22])
    ref, _ = m(x, lens)
    lowrank.factorize(m, attn=[1.0, 1.0], ff=[1.0, 1.0], min_rank=1, init="svd")
    out, _ = m(x, lens)
    assert torch.allclose(out, ref, atol=1e-4)


def test_selfattention_equals_multihead_attention():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4)
    sa = M.SelfAttention.from_mha(mha)
    mha.eval(), sa.eval()
    x = torch.randn(7, 3, 16)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 5:] = True
    ref, _ = mha(x, x, x, key_padding_mask=pad, need_weights=False)
    out, _ = sa(x, x, x, key_padding_mask=pad)
    assert torch.allclose(out, ref, atol=1e-5)


def test_greedy_decode_merges_repeats_and_drops_blanks():
    # frames: 1 1 0 1 2 2 0 0 | padded
    seq = [1, 1, 0, 1, 2, 2, 0, 0, 3]
    lp = torch.full((1, 9, 4), -10.0)
    for t, c in enumerate(seq):
        lp[0, t, c] = 0
    assert M.greedy_decode(lp, torch.tensor([8])) == [[1, 1, 2]]


# ---------------------------------------------------------------- DDP-ASR
@pytest.mark.parametrize("rule", ["random", "loss_topk", "epsilon_greedy"])
@pytest.mark.parametrize("n,fraction", [(10, 0.7), (7, 0.7), (100, 0.3), (3, 0.01), (5, 1.0)])
def test_ddp_keeps_exactly_the_fraction(rule, n, fraction):
    sel = ddp.Selector(n, fraction, rule, epsilon=0.3, max_skip=0, seed=1)
    k = max(1, min(n, int(np.floor(fraction * n + 0.5))))
    rng = np.random.default_rng(0)
    for _ in range(5):
        keep = sel.select(rng.random(n))
        assert len(keep) == k and len(set(keep.tolist())) == k and keep.min() >= 0 and keep.max() < n


def test_ddp_topk_keeps_highest_loss_and_unscored_first():
    sel = ddp.Selector(6, 0.5, "loss_topk", max_skip=0)
    assert sel.select(np.array([0.1, 0.9, np.nan, 0.5, 0.2, 0.3])).tolist() == [1, 2, 3]


def test_ddp_epsilon_greedy_split():
    sel = ddp.Selector(20, 0.5, "epsilon_greedy", epsilon=0.2, max_skip=0, seed=0)
    scores = np.arange(20, dtype=float)
    keep = set(sel.select(scores).tolist())
    assert set(range(12, 20)) <= keep  # round(0.8 * 10) = 8 highest
    assert len(keep - set(range(12, 20))) == 2


def test_ddp_never_drops_same_items_forever_when_rescored():
    """Scores refreshed every selection but never changing (the worst case): pure top-k drops the
    same 30 % forever; with max_skip or epsilon-greedy every item comes back."""
    n, scores = 20, np.linspace(1, 2, 20)
    top = ddp.Selector(n, 0.7, "loss_topk", max_skip=0)
    seen = set()
    for _ in range(10):
        seen |= set(top.select(scores).tolist())
    assert seen == set(range(6, 20))  # the failure mode max_skip exists for
    for sel in (ddp.Selector(n, 0.7, "loss_topk", max_skip=2), ddp.Selector(n, 0.7, "epsilon_greedy", epsilon=0.3, max_skip=2, seed=3)):
        last_kept = np.zeros(n, dtype=int)
        for epoch in range(1, 13):
            keep = sel.select(scores)
            assert len(keep) == 14
            last_kept[keep] = epoch
            if epoch >= 3:
                assert (epoch - last_kept <= 2).all()  # nobody skipped more than max_skip selections in a row


def test_ddp_word_segments_known_answers():
    # words start at frames 5, 30, 50, 95 of 130: a new segment at the first word >= 40 frames on
    assert ddp.word_segments([5, 30, 50, 95], 130, 40) == [(0, 50, 0, 2), (50, 95, 2, 3), (95, 130, 3, 4)]
    assert ddp.word_segments([5, 30, 50, 115], 130, 40) == [(0, 50, 0, 2), (50, 130, 2, 4)]  # a 15-frame tail merges
    assert ddp.word_segments([3], 40, 40) == [(0, 40, 0, 1)]
    assert ddp.word_segments([0, 50, 50, 90], 120, 40) == [(0, 50, 0, 1), (50, 90, 1, 3), (90, 120, 3, 4)]  # 1-2 spoken as one
    assert ddp.word_segments([45, 45], 100, 40) == [(0, 100, 0, 2)]
    assert ddp.word_segments([0, 10, 20], 30, 5) == [(0, 10, 0, 1), (10, 20, 1, 2), (20, 30, 2, 3)]
    with pytest.raises(ValueError, match="non-decreasing"):
        ddp.word_segments([10, 5], 30, 5)
    with pytest.raises(ValueError):
        ddp.Selector(5, 0.0, "random")
    with pytest.raises(KeyError, match="allowed: epsilon_greedy, loss_topk, random"):
        ddp.Selector(5, 0.5, "hardest")


# ---------------------------------------------------------------- MSRS
def test_msrs_detector_fires_at_the_right_step():
    """Masks over checks at steps 10, 20, ...: flips 50 %, 20 %, 5 %, 0.5 %, 0.5 %, 0 % of 1000
    entries; threshold 1 %, patience 2 -> calm at the 5th and 6th checks' comparisons -> fires at step 50."""
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(1000, generator=g) > 0.5
    det = msrs.StabilityDetector(threshold=0.01, patience=2)
    fired = []
    det.update(10, mask)
    for step, n_flip in zip((20, 30, 40, 50, 60, 70), (500, 200, 50, 5, 5, 0)):
        mask = mask.clone()
        mask[:n_flip] = ~mask[:n_flip]
        flips = det.update(step, mask)
        assert flips == pytest.approx(n_flip / 1000)
        fired.append(det.fired_at)
    assert fired == [None, None, None, None, 60, 60]


def test_msrs_detector_min_steps_unmoved_and_reset():
    m = torch.zeros(100, dtype=torch.bool)
    moved = m.clone()
    moved[:50] = True
    det = msrs.StabilityDetector(threshold=0.05, patience=1, min_steps=40)
    for step in (10, 20):
        det.update(step, m)  # an untouched mask is not "stable"
    assert det.fired_at is None and not det.armed
    det.update(25, moved)  # 50 % flips: the mask moves
    det.update(30, moved)  # calm but before min_steps
    assert det.fired_at is None
    det.update(40, moved)
    assert det.fired_at == 40
    det2 = msrs.StabilityDetector(0.05, patience=2)
    det2.update(1, m)
    det2.update(2, moved)
    det2.update(3, moved)  # calm 1
    m2 = moved.clone()
    m2[90:] = True  # 10 % flips resets the calm count
    det2.update(4, m2)
    det2.update(5, m2)
    assert det2.fired_at is None
    det2.update(6, m2)
    assert det2.fired_at == 6


def test_masked_linear_soft_hard_and_dense():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    ml = msrs.MaskedLinear(lin, temperature=2.0, init_density=0.9)
    assert torch.allclose(ml.soft(), torch.full((4, 6), 0.9))
    x = torch.randn(3, 6)
    assert torch.allclose(ml(x), x @ (lin.weight * 0.9).T + lin.bias, atol=1e-6)
    with torch.no_grad():
        ml.scores[0, :3] = -1.0
    w_before = lin.weight.detach().clone()
    ml.freeze()
    assert ml.binary().sum() == 24 - 3
    assert torch.allclose(ml(x), x @ (w_before * ml.hard).T + lin.bias, atol=1e-6)
    dense = ml.to_dense()
    assert dense.weight is ml.weight  # same parameter object: the optimizer state carries over
    assert (dense.weight[0, :3] == 0).all() and torch.equal(dense.weight[1:], w_before[1:])
    with pytest.raises(ValueError, match="init_density"):
        msrs.MaskedLinear(lin, 1.0, 0.4)


def test_msrs_regulariser_is_the_sum_of_the_soft_masks():
    m = small_model(layers=1)
    ms = msrs.attach(m, temperature=2.0, init_density=0.8)
    n = sum(x.scores.numel() for x in ms.values())
    with torch.no_grad():
        next(iter(ms.values())).scores[0, 0] = -3.0
    literal = sum(float(torch.sigmoid(x.temperature * x.scores.detach()).sum()) for x in ms.values())  # 1^T sigmoid(l phi)
    assert msrs.regulariser(m).item() == pytest.approx(literal, rel=1e-6)
    assert literal == pytest.approx(0.8 * (n - 1) + float(torch.sigmoid(torch.tensor(-6.0))), rel=1e-6)
    assert msrs.density(m) == pytest.approx(1 - 1 / n, abs=1e-6)
    msrs.switch(m, "dense")
    assert not msrs.masked(m)


def test_msrs_two_temperature_schedule():
    s = msrs.TwoTemperature(1.0, 100.0, 4)
    assert [round(s.at(k), 6) for k in range(6)] == [1.0, round(100**0.25, 6), 10.0, round(100**0.75, 6), 100.0, 100.0]
    assert msrs.TwoTemperature(2.0, 50.0, 0).at(1) == 50.0
    with pytest.raises(ValueError, match="final_temperature"):
        msrs.TwoTemperature(5.0, 1.0, 3)
    lin = nn.Linear(4, 3)
    ml = msrs.MaskedLinear(lin, temperature=4.0, init_density=0.9)
    assert torch.allclose(ml.soft(), torch.full((3, 4), 0.9))  # m_l = sigmoid(l phi) = init_density at l_1
    ml.temperature = 40.0
    assert torch.allclose(ml.soft(), torch.sigmoid(40.0 * ml.scores))


# ---------------------------------------------------------------- WER / CER
def test_wer_cer_known_pair():
    r = wer.error_rates(["the cat sat on the mat"], ["the cat sit on mat"])
    assert r["word_errors"] == 2 and r["ref_words"] == 6 and r["wer"] == pytest.approx(2 / 6)
    # characters: 'sat'->'sit' one substitution, 'the ' deleted = 4 -> 5 edits over 22
    assert r["char_errors"] == 5 and r["ref_chars"] == 22
    assert wer.error_rates(["a b", "c"], ["a b", "d e"])["wer"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        wer.error_rates(["a"], [])


def test_edit_distance_equals_torchaudio():
    import torchaudio.functional as AF

    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.integers(0, 4, rng.integers(0, 9)).tolist()
        b = rng.integers(0, 4, rng.integers(0, 9)).tolist()
        assert wer.edit_distance(a, b) == AF.edit_distance(a, b)


# ---------------------------------------------------------------- features, units
def test_units_roundtrip_and_unknown_symbol():
    v = features.vocabulary(["go left", "stop"], "word")
    assert v == ["<blank>", "go", "left", "stop"]
    assert features.decode(features.encode("left go", v, "word"), v, "word") == "left go"
    vc = features.vocabulary(["ab a"], "char")
    assert features.decode(features.encode("ab a", vc, "char"), vc, "char") == "ab a"
    with pytest.raises(ValueError, match="not in the training vocabulary"):
        features.encode("jump", v, "word")
    with pytest.raises(ValueError, match="allowed: word, char"):
        features.vocabulary(["x"], "phone")


def test_wav_roundtrip(tmp_path):
    x = np.sin(np.linspace(0, 100, 1600)).astype(np.float32) * 0.5
    corpora.write_wav(tmp_path / "a.wav", x, 16000)
    y, sr = corpora.read_wav(tmp_path / "a.wav")
    assert sr == 16000 and np.abs(y - x).max() < 1e-4
    assert len(corpora.speed_perturb(x, 1.1)) == round(1600 / 1.1)


def test_voice_split_is_disjoint():
    vs = corpora.voices(["en", "en-us"], ["m1", "f1", "m2"])
    s = corpora.split_voices(vs, {"dev": 1, "test": 2}, seed=0)
    assert len(s["test"]) == 2 and len(s["dev"]) == 1 and len(s["train"]) == 3
    assert not (set(s["train"]) & set(s["test"])) and not (set(s["train"]) & set(s["dev"]))
    with pytest.raises(ValueError, match="leaves no training voice"):
        corpora.split_voices(vs, {"dev": 3, "test": 3}, seed=0)


def test_missing_espeak_fails_naming_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(corpora.shutil, "which", lambda name: None)
    with pytest.raises(corpora.MissingTool, match="espeak-ng"):
        corpora.build({"source": "synthetic"}, tmp_path)


SYNTH = dict(
    source="synthetic",
    vocabulary=["red", "green", "go"],
    n_utterances=dict(train=4, dev=1, test=2),
    words=[1, 2],
    accents=["en-us", "en-gb"],
    variants=["m1", "f2"],
    held_out_voices=dict(dev=1, test=1),
    speed=[150, 170],
    pitch=[40, 60],
    word_gap=[0, 2],
    speed_perturb=[0.9, 1.1],
    snr_db=[20, 30],
    sample_rate=16000,
    seed=0,
)


@needs_espeak
def test_synthetic_corpus_and_features(tmp_path):
    man = corpora.build(SYNTH, tmp_path)
    assert list(man.split.value_counts().sort_index().items()) == [("dev", 1), ("test", 2), ("train", 4)]
    assert not set(man[man.split == "train"].voice) & set(man[man.split != "train"].voice)
    assert (man.seconds > 0.2).all()
    audio, sr = corpora.read_wav(tmp_path / man.path.iloc[0])
    assert sr == 16000 and len(audio) == pytest.approx(man.seconds.iloc[0] * sr, abs=1)
    t = features.compute(man, tmp_path, dict(n_mels=20, win_ms=25, hop_ms=10), 16000)
    assert t["offsets"][-1] == len(t["feats"]) and t["feats"].shape[1] == 20
    assert abs(man.seconds.iloc[0] * 100 - (t["offsets"][1] - t["offsets"][0])) <= 2  # 10 ms hop
    for text, ws, sec in zip(man.text, man.word_starts.map(json.loads), man.seconds):  # word alignment
        assert len(ws) == len(text.split()) and ws[0] == 0 and all(p < q for p, q in zip(ws, ws[1:])) and ws[-1] < sec


# ---------------------------------------------------------------- reproducibility (docs/speech.md)
def _noise(n=22050 * 2, seed=0):
    return (0.3 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_resample_equals_torchaudio():
    import torchaudio.functional as AF

    x = _noise()
    for orig, new in ((22050, 16000), (16000, 8000), (8000, 16000)):
        got = corpora.resample(x, orig, new)
        ref = AF.resample(torch.from_numpy(x), orig, new).numpy()
        assert got.dtype == np.float32 and got.shape == ref.shape and np.abs(got - ref).max() < 5e-5, (orig, new)  # torch sums in float32
    assert np.array_equal(corpora.resample(x, 16000, 16000), x)


def test_log_mel_equals_torchaudio_melspectrogram():
    import torchaudio.transforms as T

    spec = dict(n_mels=40, win_ms=25, hop_ms=10)
    mel = T.MelSpectrogram(sample_rate=16000, n_fft=400, win_length=400, hop_length=160, n_mels=40)
    x = corpora.resample(_noise(seed=1), 22050, 16000)
    x = x * np.linspace(0.1, 1, len(x), dtype=np.float32)  # a rising level, so that bins differ
    ref = mel(torch.from_numpy(x)).clamp_min(1e-10).log().T
    ref = (ref - ref.mean(0)) / (ref.std(0) + 1e-5)
    got = features.log_mel(x, spec, 16000)
    assert got.dtype == torch.float32 and got.shape == ref.shape and float((got - ref).abs().max()) < 1e-4
    import torchaudio.functional as AF

    fb = AF.melscale_fbanks(201, 0.0, 8000.0, 40, 16000)
    assert np.abs(features.mel_filterbank(201, 40, 16000) - fb.double().numpy()).max() < 1e-5


FEATURE_HASH = """
import hashlib, sys
import numpy as np, torch
from compbench.speech import corpora, features
torch.set_num_threads(int(sys.argv[1]))
x = (0.3 * np.random.default_rng(0).standard_normal(22050 * 2)).astype(np.float32)
y = corpora.resample(x, 22050, 16000)
f = features.log_mel(y, dict(n_mels=40, win_ms=25, hop_ms=10), 16000)
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(y.tobytes() + f.numpy().tobytes()).hexdigest())
"""


def test_resampling_and_features_are_the_same_bits_whatever_the_cpu_kernels():
    """The corpus's resampling and the log-mel features do not depend on the CPU's kernels: the
    same bits with torch's generic kernels instead of AVX-512 (ATEN_CPU_CAPABILITY), MKL's
    portable code path (MKL_CBWR), numpy's baseline SIMD only (NPY_DISABLE_CPU_FEATURES) and two
    threads. (torch's own MelSpectrogram gave other bits under the first two.)"""
    workflow = str(Path(features.__file__).parents[2])
    env = dict(os.environ, PYTHONPATH=workflow, OMP_NUM_THREADS="1")

    def run(threads, **extra):
        out = subprocess.run([sys.executable, "-c", FEATURE_HASH, str(threads)], env=dict(env, **extra), capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()

    cap, reference = run(1)
    other = run(2, ATEN_CPU_CAPABILITY="default", MKL_CBWR="COMPATIBLE", NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL AVX512_SPR")
    assert other == ["DEFAULT", reference], (cap, other)


SMOKE_CORPUS = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())["speech"]


def _corpus_bits(root) -> dict:
    man = pd.read_csv(root / "manifest.csv")
    wavs = {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in man.path}
    feats = features.compute(man, root, SMOKE_CORPUS["features"], SMOKE_CORPUS["corpus"]["sample_rate"])
    return {"manifest": (root / "manifest.csv").read_bytes(), "wavs": wavs, **{k: v.numpy().tobytes() for k, v in feats.items()}}


@needs_espeak
def test_two_syntheses_of_the_smoke_corpus_and_its_features_are_bit_identical(tmp_path):
    """The smoke config's corpus synthesised twice (the second time with another torch thread
    count, two utterances at a time as rule speech_corpus does): every WAV, the manifest (texts,
    voices, word times) and the features are the same bits."""
    got = []
    for run, threads in (("a", 1), ("b", 2)):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            corpora.build(SMOKE_CORPUS["corpus"], tmp_path / run, workers=threads).to_csv(tmp_path / run / "manifest.csv", index=False)
            got.append(_corpus_bits(tmp_path / run))
        finally:
            torch.set_num_threads(before)
    assert len(got[0]["wavs"]) == sum(SMOKE_CORPUS["corpus"]["n_utterances"].values())
    assert got[0] == got[1]


def test_a_run_is_bit_identical_with_its_seed_and_another_seed_differs():
    """A DDP run (initialisation, dropout, SpecAugment, batch order and DDP's draws all seeded)
    twice with seed 1: the same weights, curve and hypotheses; seed 2 differs. The deterministic
    kernels are switched on only while training."""
    spec, data, cpu = grid.runs(RECIPE)["ddp-utterance-0.5"], toy_data(), torch.device("cpu")
    a, b, c = (train.train(spec, RECIPE, data, cpu, seed=s) for s in (1, 1, 2))
    sa, sb, sc = (x["model"].state_dict() for x in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and a["hyps"] == b["hyps"]
    assert a["curve"].drop(columns="wall_s").equals(b["curve"].drop(columns="wall_s"))
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert not torch.are_deterministic_algorithms_enabled()


# ---------------------------------------------------------------- seeds and intervals (compbench.speech.summary)
def test_per_utterance_errors_sum_to_the_corpus_rates():
    refs, hyps = ["red go", "stop", "go go red"], ["red", "stop go", "go red red"]
    per = wer.per_utterance(refs, hyps)
    assert [u["word_errors"] for u in per] == [1, 1, 1] and [u["ref_words"] for u in per] == [2, 1, 3]
    er = wer.error_rates(refs, hyps)
    assert sum(u["word_errors"] for u in per) / sum(u["ref_words"] for u in per) == er["wer"] == 0.5
    assert sum(u["char_errors"] for u in per) / sum(u["ref_chars"] for u in per) == er["cer"]


def _items(errors: dict, words):
    return pd.DataFrame(
        [
            {
                "run": r,
                "seed": s,
                "split": "test",
                "id": f"u{i}",
                "word_errors": e,
                "ref_words": w,
                "char_errors": 2 * e,
                "ref_chars": 5 * w,
            }
            for (r, s), es in errors.items()
            for i, (e, w) in enumerate(zip(es, words))
        ]
    )


def test_summary_rates_and_paired_differences_on_hand_made_utterances():
    words = [1, 2, 3, 4]
    items = _items({("dense", 0): [1, 0, 1, 0], ("dense", 1): [0, 0, 1, 0], ("x", 0): [0, 0, 1, 0], ("x", 1): [0, 1, 1, 0]}, words)
    r = summary.rate(items, "dense", "test", [0, 1])
    assert r.mean == pytest.approx((2 / 10 + 1 / 10) / 2) and r.n_seeds == 2 and r.lo <= r.mean <= r.hi
    num, den = summary.arrays(items, "dense", "test", [0, 1])
    assert (r.lo, r.hi) == pytest.approx(stats.bootstrap(stats.seed_mean_ratio(num, den), 4))
    d = summary.difference(items, "dense", "x")
    assert d.mean == pytest.approx(((2 - 1) / 10 + (1 - 2) / 10) / 2) and d.method.startswith("bootstrap over 4 test utterances")
    assert summary.difference(items, "x", "x").interval == (0.0, 0.0)  # paired: a run against itself
    with pytest.raises(ValueError, match="share no seed"):
        summary.difference(items.assign(seed=items.seed.where(items.run == "dense", 7)), "dense", "x")
    table = pd.DataFrame(
        [(r_, s, v, m, val) for (r_, s), val in {("dense", 0): 0.2, ("dense", 1): 0.1}.items() for v, m in [("dense", "test_wer")]]
        + [("dense", s, "dense", "train_s", 10.0 + s) for s in (0, 1)]
        + [("dense", 0, "dense", "info", "{}")],
        columns=["run", "seed", "variant", "metric", "value"],
    )
    t = summary.summary(table, items).set_index("metric")
    assert t.loc["test_wer", "mean"] == pytest.approx(0.15) and t.loc["test_wer", "interval"].startswith("bootstrap over 4 test")
    assert t.loc["train_s", "sd"] == pytest.approx(np.std([10, 11], ddof=1)) and t.loc["train_s", "interval"] == "2 seeds, no interval"
    assert "info" not in t.index and t.loc["test_wer", "seeds"] == "0 1"


# ---------------------------------------------------------------- the recipe on toy data (no espeak)
def toy_data(n=10):
    g = torch.Generator().manual_seed(0)
    texts = ["a b" if i % 2 else "b" for i in range(n)]
    splits = ["train"] * (n - 4) + ["dev"] * 2 + ["test"] * 2
    feats = [torch.randn(24 + 4 * (i % 3), 16, generator=g) for i in range(n)]
    starts = [[0.01, 0.12] if i % 2 else [0.02] for i in range(n)]  # seconds; 10 ms hop
    return train.Data(feats, texts, splits, features.vocabulary(texts, "word"), "word", 0.01, word_starts=starts)


RECIPE = dict(
    model=dict(d_model=8, num_heads=2, ffn_dim=16, num_layers=2, conv_kernel=3, subsample_channels=2, dropout=0.0),
    train=dict(
        epochs=3,
        batch_size=3,
        lr=0.003,
        warmup_steps=2,
        weight_decay=0.0,
        grad_clip=5.0,
        specaugment=dict(freq_mask=2, n_freq_masks=1, time_mask=4, n_time_masks=1),
    ),
    variants=dict(
        dense=True,
        lrsms=dict(settings=[dict(name="r50", attn=[0.5, 0.5], ff=[0.5, 0.5])], random_init=["r50"], min_rank=2),
        ddp=dict(
            fractions=[0.5],
            granularities=["utterance", "segment"],
            rule="epsilon_greedy",
            epsilon=0.2,
            max_skip=2,
            every_epochs=1,
            warmup_epochs=1,
            rescore="all",
            segment_s=0.1,
        ),
        msrs=dict(
            modes=["sparse", "dense"],
            temperature=1.0,
            final_temperature=100.0,
            anneal_steps=2,
            init_density=0.6,
            lam=0.05,
            score_lr=0.2,
            check_every=1,
            flip_threshold=0.2,
            patience=1,
            min_steps=3,
        ),
    ),
)


def test_every_variant_trains_and_reports():
    data = toy_data()
    runs = grid.runs(RECIPE)
    assert set(runs) == {"dense", "lrsms-r50-svd", "lrsms-r50-random", "ddp-utterance-0.5", "ddp-segment-0.5", "msrs-sparse", "msrs-dense"}
    out = {name: train.train(spec, RECIPE, data, torch.device("cpu")) for name, spec in runs.items()}
    full = out["dense"]["metrics"]
    assert full["audio_s"] == pytest.approx(3 * full["full_epoch_audio_s"])
    assert out["lrsms-r50-svd"]["metrics"]["params"] < full["params"]
    d = out["ddp-utterance-0.5"]
    # epoch 0 full, epochs 1-2 keep 3 of 6 utterances; rescore: all adds a pass over all 6 before each selection
    assert d["info"]["kept_items"] == 3 and d["info"]["n_items"] == 6
    assert d["metrics"]["audio_s"] == pytest.approx(full["full_epoch_audio_s"] * 2, rel=0.2)
    assert d["metrics"]["rescore_audio_s"] == pytest.approx(2 * full["full_epoch_audio_s"])
    assert out["ddp-segment-0.5"]["metrics"]["audio_s"] < full["audio_s"]
    s = out["msrs-sparse"]
    assert s["info"].get("stable_step") is not None and s["info"]["switch_step"] == s["info"]["stable_step"] + 2
    assert s["metrics"]["params_effective"] < s["metrics"]["params"]
    assert "density" in s["curve"]
    for o in out.values():
        assert 0 <= o["metrics"]["test_wer"] and np.isfinite(o["curve"].loss).all()


def test_ddp_kept_segments_train_against_the_words_aligned_to_them():
    data = toy_data(14)
    spec = dict(grid.runs(RECIPE)["ddp-segment-0.5"], rescore="trained", seed=0)  # train.train adds the run's seed
    v = train.VARIANTS.get("ddp")(spec, 2)
    train_idx = data.index("train")
    hop = data.hop_s
    for epoch in range(3):
        ex = v.examples(epoch, data, train_idx)
        if epoch == 0:  # warm-up: every segment; an utterance's segments tile its frames and its words
            for u in train_idx:
                segs = sorted(sp for w, sp in ex if w == u)
                assert segs[0][0] == 0 and segs[-1][1] == len(data.feats[u])
                assert all(p[1] == q[0] and p[3] == q[2] for p, q in zip(segs, segs[1:]))
                assert segs[0][2] == 0 and segs[-1][3] == len(data.texts[u].split())
        else:
            assert len(ex) == round(0.5 * v.info["n_items"])
        x, lens, y, ylens = train._batch(data, ex, torch.device("cpu"))
        for k, ((u, span), t) in enumerate(zip(ex, torch.split(y, ylens.tolist()))):
            a, b = span[:2]
            assert torch.equal(x[k, : lens[k]], data.feats[u][a:b])  # the segment's own frames ...
            first = a == 0
            words = [
                w for w, st in zip(data.texts[u].split(), data.word_starts[u]) if (first or a <= round(st / hop)) and round(st / hop) < b
            ]
            assert t.tolist() == features.encode(" ".join(words), data.vocab, "word")  # ... against its own words
        # the score of an item is the loss of its latest forward pass
        losses = torch.arange(len(ex), dtype=torch.float32) + 0.5
        v.observe(ex, losses, None, None)
        for item, loss in zip(ex, losses.tolist()):
            assert v.scores[v.item_of[item]] == loss


def test_ddp_budgets_epochs_steps_and_time():
    d = dict(RECIPE["variants"]["ddp"], granularities=["utterance"], rescore="trained", budgets=["epochs", "steps", "time"])
    runs = {k: r for k, r in grid.runs(dict(RECIPE, variants=dict(dense=False, ddp=d))).items()}
    assert set(runs) == {"ddp-utterance-0.5", "ddp-utterance-0.5-steps", "ddp-utterance-0.5-time"}
    data, cpu = toy_data(), torch.device("cpu")
    # 6 training utterances, batch 3: the dense recipe makes 3 epochs x 2 = 6 steps; DDP keeps 3 after a full epoch
    e = train.train(runs["ddp-utterance-0.5"], RECIPE, data, cpu)["metrics"]
    assert (e["steps"], e["epochs_run"]) == (2 + 1 + 1, 3)
    s = train.train(runs["ddp-utterance-0.5-steps"], RECIPE, data, cpu)["metrics"]
    assert (s["steps"], s["epochs_run"]) == (6, 5)
    t = train.train(runs["ddp-utterance-0.5-time"], RECIPE, data, cpu, time_budget_s=1.0)
    wall = t["curve"].wall_s  # seconds at the end of each step: every step starts before the budget is spent
    assert t["metrics"]["train_s"] >= 1.0 and (len(wall) < 2 or wall.iloc[-2] < 1.0)
    with pytest.raises(ValueError, match="`time` budget"):
        train.train(runs["ddp-utterance-0.5-time"], RECIPE, data, cpu)


def test_msrs_soft_masks_are_near_binary_when_applied(monkeypatch):
    """Under the two-temperature schedule the soft masks are within 1e-2 of the binary mask that
    replaces them at the switch, so applying it barely moves the model; with one temperature
    (anneal_steps 0, today's l_1 = 1) they are far from it."""
    seen = []
    real = msrs.switch

    def spy(model, mode):
        seen.append(torch.cat([(m.soft() - m.binary().float()).abs().flatten() for m in msrs.masked(model)]))
        real(model, mode)

    monkeypatch.setattr(msrs, "switch", spy)
    recipe = dict(RECIPE, train=dict(RECIPE["train"], epochs=10))
    base = grid.runs(RECIPE)["msrs-sparse"]
    data, cpu = toy_data(), torch.device("cpu")
    two = train.train(dict(base, final_temperature=200.0, anneal_steps=6), recipe, data, cpu)["info"]
    one = train.train(dict(base, anneal_steps=0), recipe, data, cpu)["info"]
    gap_two, gap_one = seen
    assert two["switch_step"] == two["stable_step"] + 6 and two["temperature_at_switch"] == pytest.approx(200.0)
    assert float(gap_two.mean()) < 1e-2 and float((gap_two < 1e-2).float().mean()) > 0.95
    assert two["gap_mean_at_switch"] == pytest.approx(float(gap_two.mean()), rel=1e-5)
    assert float(gap_one.mean()) > 0.1 and one["temperature_at_switch"] == 1.0
    assert two["logp_jump_at_switch"] < 0.2 * one["logp_jump_at_switch"]


@needs_espeak
def test_espeak_word_starts_lie_in_the_pauses_of_the_programs_audio():
    args = ("red go seven stop", "en-gb-scotland+f3", 150, 40, 3)
    a, sr = corpora.espeak(*args)
    b, sr2, starts = corpora.espeak_words(*args)
    assert sr == sr2 and np.array_equal(a, b)  # the program's audio, unchanged
    assert len(starts) == 4 and starts[0] == 0 and all(p < q for p, q in zip(starts, starts[1:])) and starts[-1] < len(b)
    for s in starts[1:]:  # every later word starts right after a (near-)pause
        assert np.sqrt(np.mean(b[s - 200 : s] ** 2)) < 0.5 * np.sqrt(np.mean(b[s : s + 800] ** 2))


def test_word_samples_from_espeak_events():
    assert corpora.word_samples("red go stop", [[1, 0], [5, 700], [8, 1500]]) == [0, 700, 1500]
    assert corpora.word_samples("no one down", [[1, 0], [8, 9000]]) == [0, 0, 9000]  # "no one" spoken as one word
    with pytest.raises(RuntimeError, match="first word"):
        corpora.word_samples("red go", [[5, 700]])


def test_librispeech_alignment_line():
    uid, words = corpora.parse_alignment_line('84-121123-0000 ",GO,,DO,YOU," "0.490,0.890,1.270,1.380,1.490,1.890"')
    assert uid == "84-121123-0000" and words == [("go", 0.49), ("do", 1.27), ("you", 1.38)]
    with pytest.raises(ValueError, match="intervals"):
        corpora.parse_alignment_line('x ",A,B" "0.1,0.2"')


# ---------------------------------------------------------------- config checks
def _cfg():
    import yaml

    from conftest import ROOT

    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_config_bad_values_fail_naming_the_key():
    base = _cfg()
    check(base)
    c = json.loads(json.dumps(base))
    c["speech"]["variants"]["lrsms"]["random_init"] = ["r99"]
    with pytest.raises(ConfigError, match="random_init names unknown settings"):
        check(c)
    c = json.loads(json.dumps(base))
    c["speech"]["corpus"]["held_out_voices"] = {"dev": 50, "test": 50}
    with pytest.raises(ConfigError, match="held_out_voices"):
        check(c)
    c = json.loads(json.dumps(base))
    c["speech"]["model"]["num_heads"] = 5
    with pytest.raises(ConfigError, match="d_model"):
        check(c)
    c = json.loads(json.dumps(base))
    c["speech"]["corpus"] = {"source": "librispeech", "name": "ls"}
    with pytest.raises(ConfigError, match="path .* or speech.corpus.hf_id"):
        check(c)
    c["speech"]["corpus"].update(path="/data/LibriSpeech", splits={"train": "train-clean-100", "test": "test-clean"})
    c["speech"]["variants"]["ddp"]["granularities"] = ["segment"]
    with pytest.raises(ConfigError, match="speech.corpus.alignments"):
        check(c)
    c = json.loads(json.dumps(base))
    c["speech"]["variants"]["dense"] = False
    c["speech"]["variants"]["ddp"]["budgets"] = ["epochs", "time"]
    with pytest.raises(ConfigError, match="budgets has `time`"):
        check(c)


# ---------------------------------------------------------------- end to end (shared smoke run)
@pytest.mark.workflow
def test_speech_in_smoke_run(smoke):
    t = pd.read_csv(smoke.results("tables", "speech.csv"))
    runs = set(t.run)
    assert (
        {"dense"} <= runs
        and any(r.startswith("lrsms") for r in runs)
        and any(r.startswith("ddp") for r in runs)
        and any(r.startswith("msrs") for r in runs)
    )
    w = t[t.metric == "test_wer"]
    assert len(w) == len(runs) and w.value.astype(float).between(0, 5).all() and set(t.seed) == {0}
    for col in ("corpus", "run", "variant", "setting", "metric", "value", "seed", "versions", "wall_s", "peak_rss_mb"):
        assert col in t.columns
    # one seed: every run's test WER with a bootstrap interval over the test utterances, which the items hold
    s = pd.read_csv(smoke.results("tables", "speech-summary.csv"))
    sw = s[s.metric == "test_wer"].set_index("run")
    assert set(sw.index) == runs and (sw.n_seeds == 1).all() and sw.interval.str.startswith("bootstrap over").all()
    assert (sw.ci_lo <= sw["mean"] + 1e-12).all() and (sw["mean"] <= sw.ci_hi + 1e-12).all()
    items = pd.read_csv(smoke.results("speech", "items.csv"))
    for run, g in items[items.split == "test"].groupby("run"):
        assert g.word_errors.sum() / g.ref_words.sum() == pytest.approx(float(w[w.run == run].value.iloc[0]))
    for k in ("lrsms", "ddp", "msrs"):
        assert smoke.results("figures", f"speech-{k}.png").stat().st_size > 1000

"""Spectra stage: eigenvalues, the Hill/KS power-law fit under each xmin rule, the
block metric, and the rule wiring on the smoke config."""

import math
from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from compbench import blocks
from compbench.spectra import esd as spectra
from conftest import make_tiny_llama


def pareto(alpha: float, n: int, seed: int, xmin: float = 1.0) -> np.ndarray:
    """n draws of a continuous power law p(x) ∝ x^-alpha on [xmin, ∞) (inverse CDF)."""
    u = np.random.default_rng(seed).random(n)
    return np.sort(xmin * (1 - u) ** (-1 / (alpha - 1)))


def literal_fit(lam: np.ndarray, candidates) -> tuple[float, float, int]:
    """The fit written out literally, one candidate at a time (float64)."""
    lam = np.sort(np.asarray(lam, dtype=np.float64))
    best = (math.inf, math.nan, -1)
    for i in candidates:
        tail = lam[i:]
        n = len(tail)
        a = 1 + n / np.sum(np.log(tail / lam[i]))
        if not (np.isfinite(a) and a > 1):
            continue
        D = max(abs((1 - (tail[k] / lam[i]) ** (1 - a)) - k / n) for k in range(n))
        if D < best[0]:
            best = (D, a, i)
    return best[1], best[0], best[2]


def literal_peak_candidates(lam32: np.ndarray, corrected: bool) -> list[int]:
    """The xmin_peak window as described: 100 equal bins of log10 λ between its min
    and max, p = 10^(left edge of the first fullest bin), candidates λ_i ≤ 1.5 p
    (λ_i ≥ 0.95 p when corrected; ≥ log10(0.95 p) as the reference writes it)."""
    t = torch.log10(torch.tensor(lam32, dtype=torch.float32))
    counts = torch.histc(t, 100, min=t.min().item(), max=t.max().item())
    edges = torch.linspace(t.min().item(), t.max().item(), 101)
    p = 10 ** edges[int(torch.argmax(counts))]
    lower = 0.95 * p if corrected else torch.log10(0.95 * p)
    return [i for i in range(len(lam32) - 1) if lower <= lam32[i] <= 1.5 * p]


@pytest.mark.parametrize("alpha", [1.5, 2.0, 2.5, 3.0, 4.0])
def test_hill_ks_recovers_known_alpha(alpha):
    # a pure power law of 2000 eigenvalues: the full scan recovers alpha within 0.1
    lam = pareto(alpha, 2000, seed=int(alpha * 10))
    fit = spectra.fit_power_law(lam, "full")
    assert fit["reason"] == ""
    assert abs(fit["alpha"] - alpha) < 0.1, fit


@pytest.mark.parametrize("alpha", [2.0, 3.0])
def test_fit_recovers_alpha_of_a_power_law_tail_on_a_bulk(alpha):
    # a Marchenko-Pastur-like bulk below a power-law tail: the scan must find the tail
    rng = np.random.default_rng(1)
    bulk = np.linalg.svd(rng.standard_normal((600, 300)) / np.sqrt(600), compute_uv=False) ** 2  # in ~[0.09, 2.9]
    tail = pareto(alpha, 1500, seed=2, xmin=3.0)
    fit = spectra.fit_power_law(np.concatenate([bulk, tail]), "full")
    assert abs(fit["alpha"] - alpha) < 0.1, fit
    assert 2.5 < fit["xmin"] < 10


def test_eigenvalues_equal_squared_singular_values():
    torch.manual_seed(0)
    for shape in [(40, 70), (70, 40), (33, 33)]:
        w = torch.randn(*shape)
        lam = spectra.eigenvalues(w)
        assert lam.dtype == torch.float32 and len(lam) == min(shape)
        assert torch.all(lam[1:] >= lam[:-1])
        ref = torch.sort(torch.linalg.svdvals(w) ** 2).values
        torch.testing.assert_close(lam, ref, rtol=1e-5, atol=1e-6)
        # and the non-zero eigenvalues of WᵀW (float64 eigvalsh)
        full = torch.linalg.eigvalsh((w.double().T @ w.double()))
        torch.testing.assert_close(lam.double(), full[-min(shape) :], rtol=1e-4, atol=1e-4)
    # a rank-deficient matrix: exact zeros are dropped
    assert len(spectra.eigenvalues(torch.zeros(5, 8))) == 0


def test_batched_eigenvalues_match_one_by_one():
    torch.manual_seed(1)
    ws = [torch.randn(20, 30), torch.randn(30, 20), torch.randn(20, 30), torch.randn(16, 16)]
    got = spectra.batched_eigenvalues(ws, "cpu", max_elems=700)  # forces chunks of one
    for w, lam in zip(ws, got):
        torch.testing.assert_close(lam, spectra.eigenvalues(w))


def test_cpu_eigenvalues_are_the_same_bits_for_any_thread_count():
    """On the CPU every matrix is one single-threaded SVD in a pool of torch's threads
    (esd.batched_eigenvalues): the spectra a job writes do not depend on its thread count.
    (One multi-threaded LAPACK call gives other low bits than a single-threaded one.) A wide
    matrix, computed through its transpose, has the eigenvalues of the transpose."""
    g = torch.Generator().manual_seed(3)
    ws = [torch.randn(*s, generator=g) for s in [(300, 120), (120, 300), (160, 160), (300, 120), (64, 250)]]
    before = torch.get_num_threads()
    try:
        got = {}
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            got[n] = spectra.batched_eigenvalues(ws, "cpu")
            assert torch.get_num_threads() == n  # the pool's threads set their own count, not the caller's
    finally:
        torch.set_num_threads(before)
    for n in (2, 3):
        assert all(torch.equal(a, b) for a, b in zip(got[1], got[n])), n
    torch.testing.assert_close(spectra.eigenvalues(ws[1]), spectra.eigenvalues(ws[1].T.contiguous()), rtol=0, atol=0)
    ref = torch.linalg.eigvalsh(ws[1].double() @ ws[1].double().T)
    torch.testing.assert_close(got[1][1].double(), ref, rtol=1e-5, atol=1e-4)


def test_cpu_eigenvalues_run_no_more_at_once_than_max_elems_allows(monkeypatch):
    """Several SVDs run at once on the CPU (one per thread), but never more than ``max_elems``
    weight elements' worth of the largest matrix: a big model's matrices on many cores would
    otherwise all be in memory at once. Each result is still the matrix's own eigenvalues."""
    import threading
    import time

    real, lock, running, peak = spectra.eigenvalues, threading.Lock(), [0], [0]

    def tracked(w):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        try:
            return real(w)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(spectra, "eigenvalues", tracked)
    g = torch.Generator().manual_seed(4)
    ws = [torch.randn(40, 50, generator=g) for _ in range(8)]  # 2,000 elements each
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        for max_elems, most in ((10**6, 4), (4_000, 2), (3_999, 1)):
            peak[0] = 0
            got = spectra.batched_eigenvalues(ws, "cpu", max_elems=max_elems)
            assert 1 <= peak[0] <= most and (peak[0] > 1) == (most > 1), (max_elems, peak[0])
            for w, lam in zip(ws, got):
                torch.testing.assert_close(lam, real(w))
            assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)


def heavy_tailed_matrices(seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(64, 96), (128, 128), (200, 80), (256, 160), (50, 50), (300, 40)]
    return [torch.randn(*s, generator=g) @ torch.diag(torch.rand(s[1], generator=g) ** (-0.7 * (k % 3))) for k, s in enumerate(shapes)]


@pytest.mark.parametrize("rule", ["full", "mid", "peak", "peak_corrected"])
def test_each_rule_equals_a_literal_implementation(rule):
    for w in heavy_tailed_matrices():
        lam = spectra.eigenvalues(w).numpy()
        if rule == "full":
            lam_used, cands = lam[lam > 1e-5], range(len(lam[lam > 1e-5]) - 1)
        elif rule == "mid":
            lam_used, cands = lam, [int(len(lam) / 2)]
        else:
            lam_used, cands = lam, literal_peak_candidates(lam, rule == "peak_corrected")
        a, D, i = literal_fit(lam_used, cands)
        fit = spectra.fit_power_law(lam, rule)
        assert fit["alpha"] == pytest.approx(a, rel=1e-9), (rule, w.shape)
        assert fit["D"] == pytest.approx(D, rel=1e-9)
        assert fit["tail_size"] == len(lam_used) - i


def test_peak_lower_bound_is_the_references_log_scale_slip():
    # eigenvalues around 1e4: the reference's bound log10(0.95 p) ≈ 4 admits every
    # eigenvalue, while the corrected bound 0.95 p cuts the window to the peak
    lam = torch.tensor(pareto(2.5, 500, seed=3, xmin=1e4), dtype=torch.float32)
    peak, lower, upper = spectra.peak_window(lam)
    _, lower_c, upper_c = spectra.peak_window(lam, corrected=True)
    assert lower == pytest.approx(math.log10(0.95 * peak), rel=1e-5)
    assert lower_c == pytest.approx(0.95 * peak, rel=1e-6) and upper == upper_c == pytest.approx(1.5 * peak, rel=1e-6)
    c = spectra.XMIN_RULES.get("peak")(lam)
    cc = spectra.XMIN_RULES.get("peak_corrected")(lam)
    assert int(c.idx[0]) == 0  # lower bound inactive
    assert len(cc.idx) < len(c.idx) and float(lam[cc.idx[0]]) >= 0.95 * peak


def test_no_candidate_with_alpha_above_one_gives_nan_with_a_reason():
    # all eigenvalues equal: every Hill denominator is 0, no finite alpha > 1
    for rule in ["full", "mid", "peak", "peak_corrected"]:
        fit = spectra.fit_power_law(np.full(50, 2.0), rule)
        assert math.isnan(fit["alpha"]) and fit["reason"], (rule, fit)
    fit = spectra.fit_power_law(np.array([3.0]), "full")
    assert math.isnan(fit["alpha"]) and "fewer than 2" in fit["reason"]
    # only eigenvalues below WeightWatcher's 1e-5 threshold: full refuses, peak fits
    tiny = pareto(2.0, 100, seed=4, xmin=1e-9)
    tiny = tiny[tiny < 1e-6]
    assert math.isnan(spectra.fit_power_law(tiny, "full")["alpha"])
    assert spectra.fit_power_law(tiny, "peak")["reason"] == ""


def test_unknown_rule_is_refused_with_the_allowed_names():
    with pytest.raises(KeyError, match="allowed: full, mid, peak, peak_corrected"):
        spectra.fit_power_law(np.arange(1.0, 10.0), "xmin_fit")


def test_full_scan_alpha_equals_weightwatcher():
    ww = pytest.importorskip("weightwatcher")
    mats = heavy_tailed_matrices(seed=5)
    net = nn.Sequential(*[nn.Linear(w.shape[1], w.shape[0], bias=False) for w in mats])
    for layer, w in zip(net, mats):
        layer.weight.data = w.clone()
    details = ww.WeightWatcher(model=net).analyze()
    assert len(details) == len(mats)
    for w, (_, row) in zip(mats, details.iterrows()):
        fit = spectra.fit_power_law(spectra.eigenvalues(w), "full")
        # WeightWatcher runs its SVD in float64, we in float32: same xmin, alpha to 1e-4
        assert fit["alpha"] == pytest.approx(row["alpha"], abs=1e-4), (w.shape, fit, row["alpha"])
        assert fit["xmin"] == pytest.approx(row["xmin"], rel=1e-4)
    # and on identical eigenvalues, its fitting routine agrees to rounding
    from weightwatcher.WW_powerlaw import WWFit

    for w in mats:
        lam = spectra.eigenvalues(w).double().numpy()
        assert spectra.fit_power_law(lam, "full")["alpha"] == pytest.approx(WWFit(lam[lam > 1e-5]).alpha, rel=1e-9)


# 3 blocks of width 32, grouped-query attention (4 heads, 2 kv heads); tiny_llama(layers=2)
tiny_llama = partial(make_tiny_llama, vocab=64, hidden=32, inter=48, layers=3, heads=4, kv_heads=2, positions=32, seed=0)


def test_linear_modules_are_the_seven_per_block_in_order():
    model = tiny_llama()
    mods = blocks.linear_modules(model)
    assert len(mods) == 3 * 7
    assert [b for b, _, _ in mods] == [b for b in range(3) for _ in range(7)]
    kinds = [n.rsplit(".", 1)[-1] for _, n, _ in mods[:7]]
    assert kinds == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert mods[0][1] == "model.layers.0.self_attn.q_proj"
    assert all("lm_head" not in n and "embed" not in n for _, n, _ in mods)


def test_analyse_and_block_metric():
    model = tiny_llama()
    df, eigs = spectra.analyse(model, device="cpu", progress=False)
    assert len(df) == 21 and set(eigs) == set(df["module"])
    for rule in spectra.XMIN_RULES:
        assert {f"alpha_{rule}", f"xmin_{rule}", f"D_{rule}", f"tail_{rule}", f"reason_{rule}"} <= set(df.columns)
    k = df.iloc[1]  # k_proj: 16 x 32 (2 kv heads of 8)
    assert (k["rows"], k["cols"], k["n_eigs"]) == (16, 32, 16)
    name = df["module"].iloc[4]
    fit = spectra.fit_power_law(eigs[name], "peak")
    assert df["alpha_peak"].iloc[4] == fit["alpha"]
    bm = spectra.block_metric(df, "peak")
    np.testing.assert_allclose(bm, [df.loc[df.block == b, "alpha_peak"].mean() for b in range(3)])
    with pytest.raises(ValueError, match="block_wise"):
        spectra.block_metric(df, "peak", mapping="layer_wise")
    blocks = spectra.block_table(df, ["full", "peak"])
    assert list(blocks["params"]) == [int(df.loc[df.block == b, "params"].sum()) for b in range(3)]


def test_block_metric_skips_nan():
    df = pd.DataFrame({"block": [0, 0, 1, 1], "alpha_peak": [2.0, np.nan, 3.0, 5.0]})
    np.testing.assert_allclose(spectra.block_metric(df, "peak"), [2.0, 4.0])
    with pytest.raises(KeyError, match="computed: peak"):
        spectra.block_metric(df, "full")


@pytest.mark.workflow
def test_spectra_rules_on_smoke_config(smoke):
    """The smoke run's spectra rules (esd, figure_spectra) on its 2-block model: every decoder
    matrix's eigenvalues and fits, the block metrics as compbench.spectra.esd derives them, and
    both figures. (Checked on the shared smoke run: a run of its own cost ~17 s of test time.)"""
    repo = smoke.workdir
    targets = ["results/figures/spectra-alpha-tiny.png", "results/figures/spectra-esd-tiny.png"]
    blocks = pd.read_csv(repo / "results/spectra/tiny/blocks.csv")
    mats = pd.read_csv(repo / "results/spectra/tiny/matrices.csv")
    assert len(blocks) == 2 and len(mats) == 14
    assert list(blocks["params"]) == [int(mats.loc[mats.block == b, "params"].sum()) for b in range(2)]
    for rule in ["full", "mid", "peak", "peak_corrected"]:
        np.testing.assert_allclose(blocks[f"alpha_{rule}"], spectra.block_metric(mats, rule))
    from compbench.artifacts import load_tensors

    eigs = load_tensors(repo / "results/spectra/tiny/eigenvalues.safetensors")
    assert set(eigs) == set(mats["module"])
    assert all((repo / t).stat().st_size > 10_000 for t in targets)


def test_the_figures_numpy_peak_window_equals_the_fits():
    """The ESD figure (torch-free, spectra/plots.py) shades the same xmin_peak window as the fit uses."""
    from compbench.spectra import plots

    assert plots.PEAK_BINS == spectra.PEAK_BINS
    g = torch.Generator().manual_seed(0)
    for i in range(50):
        n = int(torch.randint(20, 600, (1,), generator=g))
        lam = torch.exp(torch.randn(n, generator=g, dtype=torch.float64) * (0.5 + i / 20)) * 10 ** (i % 5 - 2)
        assert plots.peak_window(lam.numpy()) == pytest.approx(spectra.peak_window(lam), rel=1e-5)

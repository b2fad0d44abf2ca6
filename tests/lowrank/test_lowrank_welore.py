"""Low-rank line (WeLore): rank rule, exact ratios, factor pairs, artifact, fine-tuning modes."""

import copy
import math
from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open

from compbench import blocks, variants
from compbench.artifacts import CorruptArtifact
from compbench.config import ConfigError
from compbench.lowrank import compress as lowrank
from compbench.lowrank import finetune as lrc_finetune
from compbench.lowrank.check import check as check_lowrank
from conftest import make_tiny_llama

# ------------------------------------------------------------------ helpers


# 2 blocks of width 32 (448 singular values in all); tiny_llama(seed=1)
tiny_llama = partial(make_tiny_llama, vocab=128, hidden=32, inter=64, layers=2, heads=2, positions=32, seed=0)


def with_spectrum(rows, cols, s, seed=0):
    """A rows × cols matrix whose singular values are exactly s (descending)."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(rows, rows, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(cols, cols, generator=g, dtype=torch.float64))
    n = min(rows, cols)
    return U[:, :n] @ torch.diag(torch.as_tensor(s, dtype=torch.float64)) @ V[:, :n].T


def table_of(model):
    mods = blocks.linear_modules(model)
    mat = pd.DataFrame(
        [dict(module=n, block=b, kind=n.rsplit(".", 1)[-1], rows=l.weight.shape[0], cols=l.weight.shape[1]) for b, n, l in mods]
    )
    sv = {n: torch.linalg.svdvals(l.weight.detach().double()) for _, n, l in mods}
    return mat, sv


def literal_welore(sv: dict, ratio: float, min_ratio: float):
    """The reference's loop, literally: for increasing τ, k_i = sum(σ̃ < τ) with
    σ̃ = (σ − min)/(max − min), LRC iff k_i / n_i > min_ratio; the first τ whose
    realised reduction reaches the target. τ runs over every value just above a σ̃
    (k only changes there)."""
    N = sum(len(s) for s in sv.values())
    T = math.floor(ratio * N + 0.5)
    allv = sorted({float(x) for s in sv.values() for x in ((s.numpy() - min(s.numpy())) / (max(s.numpy()) - min(s.numpy())))})
    for tau in [v + 1e-12 for v in allv]:
        k = {}
        for m, s in sv.items():
            d = s.numpy()
            dn = (d - min(d)) / (max(d) - min(d))
            k[m] = int(sum(dn < tau))
        if sum(v for m, v in k.items() if v / len(sv[m]) > min_ratio) >= T:
            return {m: (v if v / len(sv[m]) > min_ratio else 0) for m, v in k.items()}
    raise AssertionError("unreachable")


# ------------------------------------------------------------ factorisation


def test_full_rank_factorisation_reproduces_the_matrix():
    torch.manual_seed(0)
    W = torch.randn(48, 80)
    A, B = lowrank.factorise(W, 48)
    assert A.shape == (48, 48) and B.shape == (48, 80)
    assert torch.allclose(A @ B, W, atol=1e-5)
    lin = torch.nn.Linear(80, 48, bias=True)
    mod = lowrank.LowRankLinear.from_linear(lin, 48)
    x = torch.randn(5, 80)
    assert torch.allclose(mod(x), lin(x), atol=1e-5)


def test_truncated_factorisation_is_eckart_young():
    s = [9.0, 5.0, 3.0, 2.0, 1.0, 0.5]
    W = with_spectrum(6, 10, s).float()
    A, B = lowrank.factorise(W, 3)
    err = torch.linalg.matrix_norm(W - A @ B).item()
    assert err == pytest.approx(math.sqrt(2.0**2 + 1.0**2 + 0.5**2), rel=1e-5)
    # balanced split as the reference: A = U√S, B = √S Vᵀ have equal column/row norms
    assert torch.allclose(A.norm(dim=0), B.norm(dim=1), rtol=1e-4)
    with pytest.raises(ValueError, match="rank 7"):
        lowrank.factorise(W, 7)


# ---------------------------------------------------------------- the rule


def test_known_spectrum_gets_the_prescribed_rank():
    # σ = 10, 8, 6, 4, 2, 1, 0.5, 0 → σ̃ = 1, .8, .6, .4, .2, .1, .05, 0.
    s = torch.tensor([10, 8, 6, 4, 2, 1, 0.5, 0.0], dtype=torch.float64)
    W = with_spectrum(8, 12, s)
    sv = {"w": torch.linalg.svdvals(W)}
    # ratio 0.5: T = 4 ranks → prune σ̃ ≤ 0.1 plus the next (0.2): kept rank 4, τ = 0.2
    k, lrc, info = lowrank.welore(sv, 0.5, min_ratio=0.0)
    assert k == {"w": 4} and lrc == {"w": True} and info["tau"] == pytest.approx(0.2)
    # ratio 0.25: T = 2 → prune σ̃ ∈ {0, 0.05}; but with min_ratio 0.4999 no LRC can be as small,
    # so the threshold rises until the matrix is an LRC (k = 4 > 0.4999·8) and the overshoot cannot be given back
    k, lrc, info = lowrank.welore(sv, 0.25, min_ratio=0.0)
    assert k == {"w": 2}
    k, lrc, info = lowrank.welore(sv, 0.25, min_ratio=0.4999)
    assert k == {"w": 4} and lrc["w"] and info["trimmed"] == 0


def test_two_matrices_threshold_is_global():
    # A's tail is heavy (many tiny σ̃), B's spectrum is flat: WeLore prunes A far more.
    sa = torch.tensor([10.0, 1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1])  # σ̃ ≈ 1, .091, .071, .051, .030, .020, .010, 0
    sb = torch.tensor([10.0, 9.5, 9.0, 8.5, 8.0, 7.5, 7.0, 6.5])  # σ̃ = 1, .857, ..., 0
    k, lrc, info = lowrank.welore({"a": sa, "b": sb}, 0.5, min_ratio=0.0)  # T = 8
    assert k == {"a": 7, "b": 1}  # A keeps rank 1; B loses only its smallest (σ̃ = 0)
    assert sum(k.values()) == 8


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.6])
def test_welore_equals_the_literal_reference_loop(ratio):
    model = tiny_llama(seed=1)
    # make the spectra heterogeneous: scale the tail of a few matrices
    with torch.no_grad():
        for i, (_, _, lin) in enumerate(blocks.linear_modules(model)):
            U, S, Vh = torch.linalg.svd(lin.weight.double(), full_matrices=False)
            S = S * torch.linspace(1, 0.02 + 0.1 * (i % 5), len(S), dtype=torch.float64) ** (1 + i % 3)
            lin.weight.copy_((U * S) @ Vh)
    mat, sv = table_of(model)
    k, lrc, info = lowrank.welore(sv, ratio, min_ratio=0.0)
    assert k == literal_welore(sv, ratio, 0.0)
    if info["trimmed"] == 0:
        k2, _, _ = lowrank.welore(sv, ratio, min_ratio=0.4999)
        ref = literal_welore(sv, ratio, 0.4999)
        over = sum(ref.values()) - math.floor(ratio * 448 + 0.5)
        if over == 0:
            assert k2 == ref


@pytest.mark.parametrize("method", ["welore", "uniform"])
@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 0.6])
def test_global_ratio_is_met(method, ratio):
    # 6 matrices with power-law spectra of different exponents, n = 64 each
    sv = {f"m{i}": torch.arange(1, 65, dtype=torch.float64) ** -(0.3 + 0.4 * i) for i in range(6)}
    mat = pd.DataFrame([dict(module=m, block=i // 3, kind="q_proj", rows=64, cols=96) for i, m in enumerate(sv)])
    df, info = lowrank.allocate(method, mat, sv, ratio)
    T = math.floor(ratio * 384 + 0.5)
    assert df.pruned_rank.sum() == T
    assert info["rank_reduction"] == pytest.approx(T / 384, abs=0) and abs(info["rounding"]) <= 0.5 / 384
    assert (df.kept_rank >= 1).all() and (df.kept_rank + df.pruned_rank == df.full_rank).all()
    lrc = df[df.lrc]
    assert (lrc.params_after == lrc.kept_rank * (lrc.rows + lrc.cols)).all()
    assert (df[~df.lrc].params_after == df[~df.lrc].params_before).all()
    if method == "welore":
        assert (lrc.pruned_rank / lrc.full_rank > 0.4999).all() and (df[~df.lrc].pruned_rank == 0).all()
        # heavier-tailed spectra (larger exponent) lose more rank
        assert list(df.pruned_rank) == sorted(df.pruned_rank)
    else:
        assert df.pruned_rank.max() - df.pruned_rank.min() <= 1


def test_uniform_known_answer():
    sv = {m: torch.linspace(1, 0.1, 10) for m in "abc"}
    k, lrc, info = lowrank.uniform(sv, 0.35)  # T = ⌊10.5 + ½⌋ = 11: 3 each + 2 extra
    assert sorted(k.values()) == [3, 4, 4] and info["target_count"] == 11 and all(lrc.values())


def test_bad_inputs_fail_fast():
    sv = {"a": torch.linspace(1, 0.1, 10)}
    mat = pd.DataFrame([dict(module="a", block=0, kind="q_proj", rows=10, cols=10)])
    with pytest.raises(KeyError, match="allowed: uniform, welore"):
        lowrank.allocate("svd", mat, sv, 0.5)
    with pytest.raises(ValueError, match="outside"):
        lowrank.allocate("welore", mat, sv, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        lowrank.welore({"a": torch.tensor([1.0, float("nan")])}, 0.5)
    with pytest.raises(KeyError, match="no singular values"):
        lowrank.allocate("welore", pd.concat([mat, mat.assign(module="b")]), sv, 0.5)
    with pytest.raises(KeyError, match="allowed: full, lora, lrc"):
        lrc_finetune.MODES.get("qlora")
    base = {
        "spectra": {},
        "corpus": {},
        "lowrank": {"allocations": ["welore"], "ratios": [0.5], "finetune": {"ratios": [0.3], "allocations": []}},
    }
    with pytest.raises(ConfigError, match=r"lowrank.finetune.ratios has \[0.3\]"):
        check_lowrank(base)
    with pytest.raises(ConfigError, match="spectra"):
        check_lowrank({"lowrank": {"allocations": ["welore"], "ratios": [0.5]}})


# ------------------------------------------------------------ artifact


def compressed(tmp_path, ratio=0.3, method="welore"):
    model = tiny_llama()
    base_dir = tmp_path / "base"
    model.save_pretrained(str(base_dir), safe_serialization=True)
    mat, sv = table_of(model)
    df, info = lowrank.allocate(method, mat, sv, ratio)
    ranks = {r.module: int(r.kept_rank) for r in df.itertuples() if r.lrc}
    lowrank.compress(model, ranks)
    return model, base_dir, df, info


def test_artifact_is_smaller_by_the_expected_amount_and_loads_back(tmp_path):
    model, base_dir, df, info = compressed(tmp_path)
    assert 0 < info["n_lrc"] < len(df)  # some N-LRCs stay dense
    out = tmp_path / "variant"
    lowrank.save(out, base_dir, model, {"allocation": "welore"})
    f = out / "factors.safetensors"
    lrc = df[df.lrc]
    payload = 4 * int((lrc.kept_rank * (lrc.rows + lrc.cols)).sum())
    with safe_open(str(f), "pt") as h:
        assert sum(h.get_tensor(k).numel() for k in h.keys()) * 4 == payload
    header = f.stat().st_size - payload
    assert 0 < header < 16384
    dense_bytes = 4 * int((lrc.rows * lrc.cols).sum())
    assert dense_bytes - f.stat().st_size == pytest.approx(4 * int(lrc.params_before.sum() - lrc.params_after.sum()), abs=16384)
    assert f.stat().st_size < dense_bytes
    assert not (out / "tensors.safetensors").exists()
    loaded, tok_dir = variants.load(out)
    assert tok_dir == base_dir
    assert set(lowrank.lowrank_modules(loaded)) == set(lrc.module)
    x = torch.randint(0, 128, (2, 16))
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, model(x).logits)
    n_loaded = sum(p.numel() for p in loaded.parameters())
    n_dense = sum(p.numel() for p in tiny_llama().parameters())
    assert n_dense - n_loaded == int(lrc.params_before.sum() - lrc.params_after.sum())


def test_corrupt_artifact_is_refused(tmp_path):
    model, base_dir, df, _ = compressed(tmp_path)
    out = tmp_path / "variant"
    lowrank.save(out, base_dir, model, {})
    m = lowrank.manifest(out)
    name = next(iter(m["ranks"]))
    m["ranks"][name] += 1
    import json

    (out / "variant.json").write_text(json.dumps(m))
    with pytest.raises(CorruptArtifact, match="variant.json: .*recorded"):  # the checksum record sees the edit first
        variants.load(out)
    (out / ".compbench-artifact.json").unlink()  # without a record (an older artifact) the shape check refuses it
    with pytest.raises(CorruptArtifact, match="shapes"):
        variants.load(out)
    (out / "factors.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CorruptArtifact):
        variants.load(out)


# --------------------------------------------------------------- fine-tuning


SPEC = lrc_finetune.FTSpec(
    steps=3, batch_size=2, lr=1e-2, warmup=1, weight_decay=0.0, eval_every=3, eval_windows=2, seed=0, lora_r=2, lora_alpha=4
)


def ids():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 128, (2000,), generator=g)


def test_lrc_only_finetuning_changes_only_the_factors(tmp_path):
    model, base_dir, df, _ = compressed(tmp_path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lr_names = set(lowrank.lowrank_modules(model))
    out, curve, summary = lrc_finetune.finetune(model, "lrc", ids(), ids(), 16, SPEC, "cpu")
    after = out.state_dict()
    assert set(after) == set(before)
    factor_keys = {k for k in before if any(k.startswith(m + ".") for m in lr_names)}
    assert factor_keys and summary["trainable_params"] == sum(before[k].numel() for k in factor_keys)
    for k in before:
        if k in factor_keys:
            assert not torch.equal(before[k], after[k]), k
        else:
            assert torch.equal(before[k], after[k]), k  # bitwise unchanged
    assert len(curve) == SPEC.steps + 1 and summary["tokens"] == SPEC.steps * SPEC.batch_size * 16
    # saved against the dense base: only factors, no changed dense tensor
    lowrank.save(tmp_path / "ft", base_dir, out, {}, base_model=variants.load(base_dir)[0])
    assert not (tmp_path / "ft" / "tensors.safetensors").exists()


def test_full_and_lora_modes_and_their_artifacts(tmp_path):
    model, base_dir, df, _ = compressed(tmp_path)
    base = variants.load(base_dir)[0]
    nlrc = df[~df.lrc].module.iloc[0] + ".weight"
    x = torch.randint(0, 128, (2, 16))
    res = {}
    for mode in ("full", "lora"):
        m = copy.deepcopy(model)
        out, curve, summary = lrc_finetune.finetune(m, mode, ids(), ids(), 16, SPEC, "cpu")
        res[mode] = summary
        assert set(lowrank.lowrank_modules(out)) == set(lowrank.lowrank_modules(model))  # same factor structure
        assert not torch.equal(out.state_dict()[nlrc], base.state_dict()[nlrc])  # N-LRC weights moved
        for k in ("model.embed_tokens.weight", "lm_head.weight"):
            assert torch.equal(out.state_dict()[k], base.state_dict()[k])  # frozen in every mode
        lowrank.save(tmp_path / mode, base_dir, out, {}, base_model=base)
        loaded, _ = variants.load(tmp_path / mode)
        with torch.no_grad():
            assert torch.allclose(loaded(x).logits, out(x).logits, atol=1e-6)
    lr = lrc_finetune.count_params(lrc_finetune._lrc(copy.deepcopy(model), SPEC))[0]
    assert res["lora"]["trainable_params"] < lr < res["full"]["trainable_params"]


# ------------------------------------------------------------- end to end


@pytest.mark.workflow
def test_lowrank_line_in_the_smoke_run(smoke):
    t = pd.read_csv(smoke.results("tables", "lowrank-tiny.csv"))
    ranks = pd.read_csv(smoke.results("tables", "lowrank-ranks-tiny.csv"))
    for v, g in ranks.groupby("variant"):
        target = g.target.iloc[0]
        T = math.floor(target * g.full_rank.sum() + 0.5)
        realised = t[(t.variant == v) & (t.metric == "rank_reduction")].value.iloc[0]
        assert realised * g.full_rank.sum() == pytest.approx(g.pruned_rank.sum())
        assert abs(g.pruned_rank.sum() - T) <= g.full_rank.max()  # exact up to a coarse min_ratio jump
    ppl = t[t.metric == "perplexity"]
    assert {"dense", "lowrank-welore-0.5", "lowrank-uniform-0.5", "lowrank-welore-0.5-ft-lrc"} <= set(ppl.variant)
    assert np.isfinite(ppl.value).all()
    w = t[(t.variant == "lowrank-welore-0.5")].set_index("metric").value
    assert w["factors_bytes"] < w["replaced_dense_bytes"]
    for name in ("lowrank-tiny.png", "lowrank-ranks-tiny.png", "lowrank-finetune-tiny.png"):
        assert smoke.results("figures", name).stat().st_size > 1000

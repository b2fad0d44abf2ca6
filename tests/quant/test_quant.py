"""The quant line: stored codes (packing, round trip), the variant equal to the
composability line's GPTQ / AWQ weights, pruned-then-quantised variants staying pruned."""

import copy

import pytest
import torch

from compbench import variants
from compbench.artifacts import CorruptArtifact
from compbench.compose import quantize as Q
from compbench.compose.interventions.gptq import gptq_codes
from compbench.compose.interventions.methods import INTERVENTIONS, Context
from compbench.prune import masked
from compbench.prune.methods import prune_model
from compbench.quant import variant as qv
from compbench.quant.methods import QUANTISERS, quantise_model
from compbench.quant.registry import Quantised
from conftest import make_tiny_llama


def _ids(n=8, length=16, seed=0):
    return torch.randint(0, 64, (n, length), generator=torch.Generator().manual_seed(seed))


def _linears(model):
    from compbench.blocks import linear_modules

    return {name: mod.weight.detach().clone() for _, name, mod in linear_modules(model)}


@pytest.mark.parametrize("bits", range(2, 9))
def test_codes_pack_into_ceil_n_bits_over_8_bytes_and_unpack_to_the_same(bits):
    codes = torch.randint(0, 2**bits, (7, 13), dtype=torch.uint8, generator=torch.Generator().manual_seed(bits))
    packed = qv.pack_codes(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-7 * 13 * bits // 8)
    assert torch.equal(qv.unpack_codes(packed, (7, 13), bits), codes)
    with pytest.raises(CorruptArtifact, match="do not hold"):
        qv.unpack_codes(packed[:-1], (7, 13), bits)
    with pytest.raises(ValueError, match=f"do not fit in {bits} bits"):
        qv.pack_codes(torch.full((2,), 2**bits - 1, dtype=torch.int32) + 1, bits)


def test_four_bit_codes_pack_two_per_byte_low_nibble_first():
    assert qv.pack_codes(torch.tensor([1, 2, 15, 0], dtype=torch.uint8), 4).tolist() == [0x21, 0x0F]


def test_rtn_codes_known_answer():
    # range [-1, 2] at 2 bits: scale 1, zero 1; codes round(x) + 1 (0.5 rounds to even 0)
    c = Q.rtn_codes(torch.tensor([[-1.0, 0.0, 0.5, 2.0]]), 2, 4)
    assert c.codes.tolist() == [[0, 1, 1, 3]] and c.scale.tolist() == [[1.0]] and c.zero.tolist() == [[1.0]]
    assert c.dequantise().tolist() == [[-1.0, 0.0, 0.0, 2.0]]


def test_gptq_with_a_mask_keeps_pruned_weights_at_zero_and_an_all_true_mask_changes_nothing():
    g = torch.Generator().manual_seed(0)
    W, X = torch.randn(12, 40, generator=g), torch.randn(200, 40, generator=g)
    H = X.T @ X / 200
    plain = gptq_codes(W, H, 4, 16)
    same = gptq_codes(W, H, 4, 16, keep=torch.ones_like(W, dtype=torch.bool))
    assert torch.equal(plain.codes, same.codes) and torch.equal(plain.scale, same.scale)
    keep = torch.rand(W.shape, generator=g) > 0.5
    Wq = gptq_codes(W * keep, H, 4, 16, keep=keep).dequantise()
    assert (Wq[~keep] == 0).all() and (Wq[keep] != 0).float().mean() > 0.8


def _quantise(method, group=8, keep=None, model=None):
    model = model if model is not None else make_tiny_llama(seed=1)
    quantised, info = quantise_model(model, method, 4, group, _ids(), "cpu", keep)
    return model, quantised, info


def _half_params(q: Quantised) -> Quantised:
    """What the artifact keeps: scales (and AWQ's input scales) rounded to float16."""
    c = q.codes
    smooth = None if q.smooth is None else q.smooth.half().float()
    return Quantised(Q.Codes(c.codes, c.scale.half().float(), c.zero, c.bits, c.group_size), smooth)


@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_the_variant_equals_the_composability_lines_weights(tmp_path, method):
    """Same model, same calibration ids: the quant line's in-memory weights are the compose
    intervention's bit for bit; the stored variant reloads to its codes with float16 scales."""
    base = tmp_path / "base"
    make_tiny_llama(seed=1).save_pretrained(base)
    reference = make_tiny_llama(seed=1)
    INTERVENTIONS.get(method)(reference, Context(None, torch.device("cpu"), None, _ids()), bits=4, group_size=8)
    model, quantised, info = _quantise(method)
    ref, ours = _linears(reference), _linears(model)
    assert set(quantised) == set(ref) and info
    for name, w in ref.items():
        assert torch.equal(ours[name], w), name
        assert torch.equal(quantised[name].weight(), w), name
    qv.save(tmp_path / "v", base, quantised, {"method": method, "bits": 4, "group_size": 8})
    loaded, tok_dir = variants.load(tmp_path / "v")
    assert str(tok_dir) == str(base)
    stored, back = _linears(loaded), qv.load_quantised(tmp_path / "v")
    for name, q in quantised.items():
        assert torch.equal(back[name].codes.codes, q.codes.codes) and torch.equal(back[name].codes.zero, q.codes.zero)
        assert torch.equal(stored[name], _half_params(q).weight()), name
        torch.testing.assert_close(stored[name], ref[name], rtol=2**-9, atol=0)  # float16 scales: 2^-11 each
    dense = _linears(make_tiny_llama(seed=1))
    assert all(not torch.equal(stored[n], dense[n]) for n in dense)


def test_pruned_then_quantised_stays_pruned_for_every_method(tmp_path):
    base = tmp_path / "base"
    make_tiny_llama(seed=1).save_pretrained(base)
    pruned_model = make_tiny_llama(seed=1)
    masks, changed = prune_model(pruned_model, "sparsegpt", None, (2, 4), _ids(), "cpu")
    masked.save(tmp_path / "pruned", base, masks, changed, {"method": "sparsegpt", "nm": [2, 4]})
    for method in QUANTISERS.names():
        model, _ = variants.load(tmp_path / "pruned")
        _, quantised, _ = _quantise(method, keep=masked.load_masks(tmp_path / "pruned"), model=model)
        for name, q in quantised.items():
            assert (q.weight()[~masks[name]] == 0).all(), (method, name)
        qv.save(tmp_path / method, base, quantised, {"method": method}, pruned_dir=tmp_path / "pruned")
        loaded = _linears(variants.load(tmp_path / method)[0])
        for name, keep in masks.items():
            assert (loaded[name][~keep] == 0).all() and (loaded[name][keep] != 0).float().mean() > 0.9, (method, name)
            assert torch.equal(loaded[name], _half_params(quantised[name]).weight()), (method, name)


def test_a_damaged_or_mismatched_artifact_is_refused(tmp_path):
    base = tmp_path / "base"
    make_tiny_llama(seed=1).save_pretrained(base)
    _, quantised, _ = _quantise("rtn")
    qv.save(tmp_path / "v", base, quantised, {"method": "rtn"})
    (tmp_path / "v" / "codes.safetensors").write_bytes((tmp_path / "v" / "codes.safetensors").read_bytes()[:-5])
    with pytest.raises(CorruptArtifact):
        variants.load(tmp_path / "v")
    other = tmp_path / "other"
    make_tiny_llama(seed=1, hidden=32, inter=64).save_pretrained(other)
    qv.save(tmp_path / "w", other, quantised, {"method": "rtn"})
    with pytest.raises(CorruptArtifact, match="shape"):
        variants.load(tmp_path / "w")
    with pytest.raises(ValueError, match="float16"):
        tiny = {n: Quantised(Q.Codes(q.codes.codes, q.codes.scale * 1e-9, q.codes.zero, 4, 8)) for n, q in quantised.items()}
        qv.save(tmp_path / "x", base, tiny, {"method": "rtn"})
    with pytest.raises(ValueError, match="needs calibration"):
        quantise_model(make_tiny_llama(), "gptq", 4, 8)


def test_rtn_needs_no_data_and_group_size_changes_the_codes():
    a = _quantise("rtn", group=8)[1]
    b = _quantise("rtn", group=16)[1]
    name = next(iter(a))
    assert a[name].codes.scale.shape[1] == 2 * b[name].codes.scale.shape[1]
    assert not torch.equal(a[name].weight(), b[name].weight())
    assert QUANTISERS.get("rtn").needs_calibration is False and copy.copy(a) == a


def test_the_claims_compare_each_method_with_rtn_at_the_same_bits():
    import pandas as pd

    from compbench.quant.claims import beats_rtn
    from compbench.verdicts import FAILS, HOLDS, UNTESTABLE

    t = pd.DataFrame(
        [
            {"variant": v, "dataset": d, "perplexity": p}
            for v, d, p in [
                ("dense", "tiny", 10.0),
                ("quant-rtn-w4g128", "tiny", 12.0),
                ("quant-rtn-w4g128", "zz", 1.0),  # the first data set decides
                ("quant-gptq-w4g128", "tiny", 11.0),
                ("quant-awq-w4g128", "tiny", 12.5),
                ("quant-gptq-w4g64", "tiny", 5.0),  # another group size: not compared
            ]
        ]
    )
    gptq, awq = beats_rtn(lambda p: t, "x", "gptq", 4, 128), beats_rtn(lambda p: t, "x", "awq", 4, 128)
    assert (gptq.verdict, gptq.diff, awq.verdict, awq.diff) == (HOLDS, 1.0, FAILS, -0.5)
    assert "RTN 12.00 → GPTQ 11.00 (tiny perplexity, 4 bits, groups of 128)" == gptq.numbers
    assert beats_rtn(lambda p: t, "x", "gptq", 3, 128).verdict == UNTESTABLE
    # with the windows (rule perplexity): a paired bootstrap over them, oriented as the difference
    w = [30.0 + (i % 5) for i in range(40)]
    windows = pd.DataFrame(
        [
            ("m", v, "tiny", i, x + shift, 9)
            for v, shift in (("quant-rtn-w4g128", 2.0), ("quant-gptq-w4g128", 0.0))
            for i, x in enumerate(w)
        ],
        columns=["model", "variant", "dataset", "window", "nll", "tokens"],
    )
    tables = {"x": t, "w": windows}
    o = beats_rtn(tables.__getitem__, "x", "gptq", 4, 128, windows=("w",))
    assert o.diff == 1.0 and o.verdict == HOLDS and o.interval[0] > 0 and o.how == "bootstrap over 40 windows (2000 resamples)"
    assert beats_rtn(tables.__getitem__, "x", "awq", 4, 128, windows=("w",)).interval is None  # awq has no windows here

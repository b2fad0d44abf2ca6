"""The trade-off plane: the storage format of every variant kind against hand counts on a
tiny model, the Pareto front against a brute-force dominance check, the table and the grid."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from compbench import lines, variants
from compbench.lowrank import compress as lowrank
from compbench.prune import masked
from compbench.prune.methods import prune_model
from compbench.quant import variant as qv
from compbench.quant.methods import quantise_model
from compbench.tradeoff import grid, pareto, plane, storage
from conftest import ROOT, make_tiny_llama


# ---------------------------------------------------------------- the Pareto front
def brute_force(x, y):
    """Literal definition: i is on the front unless some j is <= in both and < in one (finite points only)."""
    out = []
    for i in range(len(x)):
        if not (math.isfinite(x[i]) and math.isfinite(y[i])):
            out.append(False)
            continue
        dominated = any(
            math.isfinite(x[j]) and math.isfinite(y[j]) and x[j] <= x[i] and y[j] <= y[i] and (x[j] < x[i] or y[j] < y[i])
            for j in range(len(x))
        )
        out.append(not dominated)
    return out


@pytest.mark.parametrize("seed", range(40))
def test_front_equals_the_brute_force_dominance_check(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    if seed % 2:  # small integers: many ties and duplicates
        x, y = rng.integers(0, 6, n).astype(float), rng.integers(0, 6, n).astype(float)
    else:
        x, y = rng.random(n), rng.lognormal(size=n)
    if seed % 5 == 0:
        y[rng.integers(0, n)] = np.nan
        x[rng.integers(0, n)] = np.inf
    assert pareto.front(x, y).tolist() == brute_force(x.tolist(), y.tolist())


def test_front_known_answer():
    x = [1, 2, 2, 3, 4, 4, 5]
    y = [9, 5, 5, 6, 1, 1, 0.5]  # (3, 6) dominated by (2, 5); the duplicates (2, 5) and (4, 1) both stay
    assert pareto.front(x, y).tolist() == [True, True, True, False, True, True, True]
    assert pareto.front([], []).tolist() == []
    with pytest.raises(ValueError, match="one length"):
        pareto.front([1, 2], [1])


# ---------------------------------------------------------------- storage formats, hand counts
# The tiny model: 2 blocks of q, k, v, o (16 x 16), gate, up (32 x 16), down (16 x 32):
# n = 2 * (4 * 256 + 3 * 512) = 5120 weights.
N = 5120


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    d = tmp_path_factory.mktemp("stored")
    base = d / "base"
    model = make_tiny_llama(seed=1)
    model.save_pretrained(base)
    ids = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(0))
    out = {"dense": base}
    for name, ratios, nm in (("masked-0.7", {0: 0.7, 1: 0.7}, None), ("masked-2of4", None, (2, 4))):
        m = make_tiny_llama(seed=1)
        masks, changed = prune_model(m, "magnitude", ratios, nm, None, "cpu")
        masked.save(d / name, base, masks, changed, {"method": "magnitude", **({"nm": list(nm)} if nm else {})})
        out[name] = d / name
    lr = lowrank.compress(make_tiny_llama(seed=1), {"model.layers.0.mlp.down_proj": 4, "model.layers.1.self_attn.q_proj": 3})
    lowrank.save(d / "lowrank", base, lr, {"allocation": "uniform"})
    out["lowrank"] = d / "lowrank"
    for method in ("rtn", "awq"):
        q, _ = quantise_model(make_tiny_llama(seed=1), method, 4, 8, ids)
        qv.save(d / method, base, q, {"method": method})
        out[method] = d / method
    for pruned in ("masked-0.7", "masked-2of4"):
        m, _ = variants.load(d / pruned)
        q, _ = quantise_model(m, "rtn", 4, 8, keep=masked.load_masks(d / pruned))
        qv.save(d / f"rtn-on-{pruned}", base, q, {"method": "rtn"}, pruned_dir=d / pruned)
        out[f"rtn-on-{pruned}"] = d / f"rtn-on-{pruned}"
    inv = {name: tuple(mod.weight.shape) for _, name, mod in __import__("compbench.blocks").blocks.linear_modules(model)}
    assert sum(r * c for r, c in inv.values()) == N
    return out, inv


# (variant, bits, effective params): the counts by hand, from docs/tradeoff.md's formats
HAND = {
    "dense": (16 * N, N),
    # magnitude 70 %: int(0.7 * 256) = 179 and int(0.7 * 512) = 358 pruned, so 77 and 154 kept,
    # 2 * (4 * 77 + 3 * 154) = 1540 kept; 16 bits each + a 1-bit bitmap over all 5120
    "masked-0.7": (16 * 1540 + N, 1540),
    # 2:4: 2560 kept, 16 bits + a 2-bit index each
    "masked-2of4": (18 * 2560, 2560),
    # down_proj 16 x 32 at rank 4 and q_proj 16 x 16 at rank 3 instead of their dense weights
    "lowrank": (16 * (N - 512 - 256) + 16 * 4 * (16 + 32) + 16 * 3 * (16 + 16), N - 512 - 256 + 4 * 48 + 3 * 32),
    # 4-bit codes + 32 bits per row and group of 8: q, k, v, o 16 rows x 2 groups, gate, up 32 x 2, down 16 x 4:
    # 2 * (4 * 32 + 2 * 64 + 64) = 640 groups
    "rtn": (4 * N + 32 * 640, N),
    # + AWQ's 16-bit scale per input column: 2 * (6 * 16 + 32) = 256 columns
    "awq": (4 * N + 32 * 640 + 16 * 256, N),
    "rtn-on-masked-0.7": (4 * 1540 + 32 * 640 + N, 1540),
    "rtn-on-masked-2of4": (4 * 2560 + 32 * 640 + 2 * 2560, 2560),
}


@pytest.mark.parametrize("variant", sorted(HAND))
def test_every_storage_format_against_a_hand_count(stored, variant):
    dirs, inv = stored
    s = storage.size(dirs[variant], inv)
    assert (s.bits, s.params) == HAND[variant]
    assert s.bytes == HAND[variant][0] // 8 and s.format and s.method in ("dense", "magnitude", "uniform", "rtn", "awq", "magnitude+rtn")


def test_every_variant_kind_has_a_storage_format_or_is_dense_sized():
    for kind in {k for line in lines.LINES.values() for k in line.variant_kinds}:
        variants._kind(kind)
    assert set(variants.KINDS.names()) - set(storage.FORMATS.names()) == {"trained"}  # memtrain: fine-tuned, dense-sized


def test_the_table_flags_the_front_and_averages_zero_shot_accuracy(stored):
    dirs, inv = stored
    points = {v: ("line-" + v.split("-")[0], str(p)) for v, p in dirs.items()}
    rng = np.random.default_rng(0)
    ppl = pd.DataFrame(
        [
            {"variant": v, "dataset": d, "metric": m, "value": float(rng.lognormal(3))}
            for v in dirs
            for d in ("tiny", "c4")
            for m in ("perplexity", "nll")
        ]
    )
    zs = pd.DataFrame(
        [
            {"variant": v, "dataset": t, "metric": m, "value": float(rng.random())}
            for v in dirs
            for t in ("a", "b")
            for m in ("acc", "acc_norm")
        ]
    )
    t = plane.table("tiny", points, inv, ppl, zs, "c4")
    assert len(t) == len(dirs) and (t.bytes.diff().dropna() >= 0).all()
    assert dict(zip(t.variant, t.bytes)) == {v: b // 8 for v, (b, _) in HAND.items()}
    assert t.bits_per_weight[t.variant == "dense"].item() == 16
    want = ppl[(ppl.metric == "perplexity") & (ppl.dataset == "c4")].set_index("variant").value
    assert t.set_index("variant").perplexity_c4.to_dict() == want.to_dict()
    assert t.on_front.tolist() == brute_force(t.bytes.tolist(), t.perplexity_c4.tolist())
    acc = zs[zs.metric == "acc"].groupby("variant").value.mean()
    assert np.allclose(t.zeroshot_acc, t.variant.map(acc))
    assert t.on_front_zeroshot.tolist() == brute_force(t.bytes.tolist(), (-t.zeroshot_acc).tolist())
    none = plane.table("tiny", points, inv, ppl, None, "tiny")
    assert none.zeroshot_acc.isna().all() and not none.on_front_zeroshot.any() and none.on_front.any()
    with pytest.raises(ValueError, match="wikitext2"):
        plane.table("tiny", points, inv, ppl, None, "wikitext2")


def test_the_figure_draws_both_planes(stored, tmp_path):
    from compbench import figures
    from compbench.tradeoff import plots

    dirs, inv = stored
    points = {v: ("line", str(p)) for v, p in dirs.items()}
    ppl = pd.DataFrame([{"variant": v, "dataset": "tiny", "metric": "perplexity", "value": 10.0 + i} for i, v in enumerate(dirs)])
    zs = pd.DataFrame([{"variant": v, "dataset": "a", "metric": "acc", "value": 0.5} for v in dirs])
    fig = plots.plane(plane.table("tiny", points, inv, ppl, zs, "tiny"), "tiny", "t")
    assert len(fig.axes) == 2 and fig.axes[0].get_yscale() == "log"
    figures.save(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


# ---------------------------------------------------------------- the grid
def _smoke():
    from compbench.config import prepare, read_file

    path = ROOT / "config" / "smoke.yaml"
    return prepare(read_file(path), str(ROOT / "config" / "schema.yaml"), [path])  # as the Snakefile: schema defaults, checks


def test_the_plane_holds_every_compressed_variant_and_no_trained_one():
    cfg = _smoke()
    pts = grid.plane(cfg, "tiny")
    every = lines.variants(cfg, "tiny")
    assert set(pts) == {v for v in every if not v.startswith("train-")}
    assert {line for line, _ in pts.values()} == {"dense", "pruning", "calibration_study", "lowrank", "quant"}
    assert pts["quant-gptq-w4g16-on-prune-sparsegpt-2of4"] == ("quant", every["quant-gptq-w4g16-on-prune-sparsegpt-2of4"])
    held = {v for b in lines.lm_eval_batches(cfg, "tiny").values() for v in b}  # the zero-shot tables: one per line's batch
    assert held == set(pts) and grid.dataset(cfg) == "tiny"
    assert grid.zeroshot_outputs(cfg, "tiny") == [
        f"results/eval/tiny/lm_eval-{b}.csv" for b in ("dense", "pruning", "calibration_study", "lowrank", "quant")
    ]
    cfg["tradeoff"]["zeroshot"] = False
    assert grid.zeroshot_outputs(cfg, "tiny") == []


def test_the_claim_compares_the_best_quantised_with_the_best_pruned_no_larger():
    from compbench.tradeoff.claims import quantisation_beats_pruning
    from compbench.verdicts import FAILS, HOLDS, NOISE, UNTESTABLE

    rows = [
        ("quant-gptq-w4g128", "quant", 100, 10.0),
        ("quant-rtn-w4g128", "quant", 100, 11.0),
        ("quant-gptq-w4g128-on-prune-x", "quant", 50, 9.0),  # pruned then quantised: neither side
        ("prune-wanda-uniform-0.8", "pruning", 90, 12.0),
        ("calib-a_4x8_s0-wanda-0.8", "calibration_study", 100, 13.0),
        ("prune-wanda-uniform-0.5", "pruning", 150, 8.0),  # larger than the quantised model
        ("lowrank-welore-0.6", "lowrank", 80, 5.0),  # not pruned
    ]
    t = pd.DataFrame([{"variant": v, "line": line, "bytes": b, "perplexity_tiny": p} for v, line, b, p in rows])
    o = quantisation_beats_pruning(lambda p: t, "x", "tiny")
    assert (
        (o.verdict, o.diff) == (HOLDS, 2.0)
        and o.numbers.startswith("quant-gptq-w4g128 10.00")
        and "prune-wanda-uniform-0.8 12.00" in o.numbers
    )
    # the two variants' windows the same: within noise, whatever the table says
    w = pd.DataFrame(
        [("m", v, "tiny", i, 20.0 + i % 3, 9) for v in ("quant-gptq-w4g128", "prune-wanda-uniform-0.8") for i in range(30)],
        columns=["model", "variant", "dataset", "window", "nll", "tokens"],
    )
    o = quantisation_beats_pruning({"x": t, "w": w}.__getitem__, "x", "tiny", windows=("w",))
    assert o.diff == 2.0 and o.interval == (0.0, 0.0) and o.verdict == NOISE
    t.loc[3, "perplexity_tiny"] = 9.5
    assert quantisation_beats_pruning(lambda p: t, "x", "tiny").verdict == FAILS
    assert (
        quantisation_beats_pruning(
            lambda p: t[t.bytes != 90].assign(bytes=lambda d: d.bytes + (d.line != "quant") * 100), "x", "tiny"
        ).verdict
        == UNTESTABLE
    )
    assert quantisation_beats_pruning(lambda p: t[t.line != "quant"], "x", "tiny").verdict == UNTESTABLE

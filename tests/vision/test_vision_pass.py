"""Vision line: PASS channel sparsity (structural pruning, FLOPs, hyper-network).
(The MoE-fusion half of the former test_vision.py is tests/fusion/test_fusion_moe.py.)"""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from compbench import stats
from compbench.vision import channels as C
from compbench.vision import images, summary
from compbench.vision import pass_sparsity as PS
from compbench.vision import pipeline as pass_pipeline


def _randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.2
            m.running_mean = torch.randn(n, generator=g) * 0.1
            m.running_var = torch.rand(n, generator=g) + 0.5
    return model.eval()


class Bottleneck(nn.Module):
    """torchvision-style bottleneck (conv1 1x1 -> conv2 3x3 -> conv3 1x1) for the unit discovery test."""

    def __init__(self, c, mid):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv2, self.bn2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid)
        self.conv3, self.bn3 = nn.Conv2d(mid, c, 1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        o = torch.relu(self.bn1(self.conv1(x)))
        o = torch.relu(self.bn2(self.conv2(o)))
        return torch.relu(self.bn3(self.conv3(o)) + x)


class BottleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Bottleneck(8, 6)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.block(self.stem(x)).mean((2, 3)))


class TinyVGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1, bias=True),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 5, 3, padding=1),
            nn.BatchNorm2d(5),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(5, 4)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


def _random_keep(model, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for w in C.widths(model):
        k = int(torch.randint(1, w + 1, (1,), generator=g))
        out.append(torch.randperm(w, generator=g)[:k])
    return out


@pytest.mark.parametrize("make", [lambda: C.SmallResNet((4, 8, 8), (2, 1, 1), 5), BottleNet, TinyVGG])
def test_pruned_network_equals_masked_dense(make):
    torch.manual_seed(0)
    model = _randomise_bn(make())
    x = torch.randn(7, 3, 8, 8)
    for seed in range(4):
        keep = _random_keep(model, seed)
        pruned = C.prune(model, keep)
        # the layers really are smaller
        assert C.widths(pruned) == [len(k) for k in keep]
        assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters()) or all(
            len(k) == w for k, w in zip(keep, C.widths(model))
        )
        masked = C.masked_forward(model, x, C.keep_to_masks(model, keep))
        assert torch.allclose(pruned(x), masked, atol=1e-5, rtol=1e-5)
    # keeping everything is the identity
    full = C.prune(model, [torch.arange(w) for w in C.widths(model)])
    assert torch.allclose(full(x), model(x), atol=1e-6)


def test_unit_discovery():
    assert [u.name for u in C.units(BottleNet())] == ["block.conv1", "block.conv2"]
    assert [(u.conv_out, u.bn, u.conv_in) for u in C.units(TinyVGG())] == [
        ("features.0", "features.1", "features.4"),
        ("features.4", "features.5", "features.7"),
    ]
    with pytest.raises(ValueError, match="no prunable channel units"):
        C.units(nn.Sequential(nn.Linear(2, 2)))


def test_flops_hand_count():
    m = C.SmallResNet((4,), (1,), n_classes=3)
    # stem 3->4 3x3 on 8x8: 8*8*4*3*9; block conv1 4->4 and conv2 4->4: 8*8*4*4*9 each; fc 4*3 + 3 bias
    dense = 8 * 8 * 4 * 3 * 9 + 2 * 8 * 8 * 4 * 4 * 9 + 4 * 3 + 3
    assert dense == 25359
    assert C.count_flops(m, (3, 8, 8))["macs"] == dense
    pruned = C.prune(m, [torch.tensor([0, 3])])
    assert C.count_flops(pruned, (3, 8, 8))["macs"] == 8 * 8 * 4 * 3 * 9 + 2 * 8 * 8 * 2 * 4 * 9 + 15
    # strided stage with a downsample: conv1 stride 2 4->8 on 4x4 output, conv2 8->8, downsample 1x1 4->8
    m2 = C.SmallResNet((4, 8), (1, 1), n_classes=2)
    hand = dense - 15 + 16 * 8 * 4 * 9 + 16 * 8 * 8 * 9 + 16 * 8 * 4 + 8 * 2 + 2
    assert C.count_flops(m2, (3, 8, 8))["macs"] == hand
    # parameters: conv weights + BN affine + fc
    assert C.count_flops(m, (3, 8, 8))["params"] == 3 * 4 * 9 + 8 + 2 * (4 * 4 * 9 + 8) + 15


@pytest.mark.parametrize("make", [lambda: C.SmallResNet((4, 8, 8), (2, 1, 1), 5), BottleNet, TinyVGG])
def test_unit_flops_formula_matches_pruned_count(make):
    model = make()
    uf = C.UnitFlops(model, (3, 8, 8))
    assert uf.dense == C.count_flops(model, (3, 8, 8))["macs"]
    for seed in range(5):
        keep = _random_keep(model, seed)
        assert uf([len(k) for k in keep]) == pytest.approx(C.count_flops(C.prune(model, keep), (3, 8, 8))["macs"], rel=1e-12)


def test_budget_counts_meet_the_target():
    model = C.SmallResNet((8, 16, 32), (1, 1, 1), 4)
    uf = C.UnitFlops(model, (3, 16, 16))
    for target in (0.2, 0.5, 0.8):
        for ratios in ([1, 1, 1], [0.2, 0.9, 0.5]):
            k = C.counts_for_budget(uf, ratios, target)
            assert uf(k) <= target * uf.dense
            # maximal: no single extra channel fits
            assert all(k[i] == uf.C[i] or uf([*k[:i], k[i] + 1, *k[i + 1 :]]) > target * uf.dense for i in range(3))
    # uniform ratios give (nearly) equal keep fractions
    k = C.counts_for_budget(uf, [1, 1, 1], 0.5)
    fr = [a / b for a, b in zip(k, uf.C)]
    assert max(fr) - min(fr) <= 1 / 8 + 1e-9


def test_soft_masks_approach_hard_topk():
    s = [torch.tensor([0.3, 2.0, -1.0, 1.0, 0.0]), torch.tensor([5.0, -5.0])]
    keep = torch.tensor([0.6, 0.5])
    m = PS.soft_masks(keep, s, tau=0.01, temp=0.01)
    assert torch.allclose(m[0], torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0]), atol=1e-3)
    assert torch.allclose(m[1], torch.tensor([1.0, 0.0]), atol=1e-3)
    # soft counts sum to about k*C at low temperature
    assert float(m[0].sum()) == pytest.approx(3.0, abs=1e-3)


def _hyper(widths=(4, 6, 5), hidden=8, seed=0):
    torch.manual_seed(seed)
    H = PS.RecurrentHyperNet(list(widths), hidden=hidden, in_ch=3)
    wf = [torch.rand(c, PS.N_WEIGHT_FEATS) for c in widths]
    return H, wf


def _literal_scores(H, wf, h, c):
    """The recurrence written out: (h_l, c_l) = LSTMCell(E_l vec(W_l), (h_{l-1}, c_{l-1})); s_l = A_l relu(LN(h_l))."""
    out = []
    for l, f in enumerate(wf):
        h, c = H.cell(H.embed[l](f.reshape(1, -1)), (h, c))
        out.append(H.mapper[l](torch.relu(H.norm(h))).squeeze(0))
    return out


def test_lstm_initial_state_comes_from_the_prompt():
    H, wf = _hyper()
    border = PS.Prompt((3, 12, 12), 2).border
    V1 = torch.randn(3, 12, 12) * border
    V2 = V1.clone()
    V2[:, 0, :4] += 1.0
    s1, s2 = H(wf, V1), H(wf, V2)
    # changing the prompt changes the FIRST layer's scores (the state it starts from)
    assert not torch.allclose(s1[0], s2[0], atol=1e-4)
    # the initial state is g_omega(V): h_0 = tanh(first half), c_0 = second half of the encoder's output
    h0, c0 = H.initial_state(V1, wf[0])
    enc = H.prompt_encoder.out(H.prompt_encoder.conv(V1.unsqueeze(0)))
    assert torch.allclose(h0, torch.tanh(enc[:, :8])) and torch.allclose(c0, enc[:, 8:])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(s1, _literal_scores(H, wf, h0, c0)))
    # without a prompt (pass_noprompt) the LSTM starts from zeros
    z = torch.zeros(1, 8)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(H(wf, None), _literal_scores(H, wf, z, z)))
    # the first layer's scores carry a gradient to the prompt pixels (through g_omega alone)
    V = V1.clone().requires_grad_(True)
    H(wf, V)[0].sum().backward()
    assert V.grad.abs().sum() > 0


def test_pass_hypernet_is_recurrent_across_layers():
    H, wf = _hyper()
    s1 = H(wf, None)
    s2 = H([wf[0] * 3.0, wf[1], wf[2]], None)
    # changing only the first layer's weight statistics changes the last layer's scores (the LSTM state carries it)
    assert not torch.allclose(s1[2], s2[2], atol=1e-5)
    assert [len(s) for s in s1] == [4, 6, 5]


def _slow_global_pruning(scores, flops, target):
    """Literal global pruning: walk all channels by descending score, add each while the network fits."""
    flat = [(float(v), l, c) for l, s in enumerate(scores) for c, v in enumerate(s.tolist())]
    flat.sort(key=lambda e: -e[0])
    kept = [{int(torch.argmax(s))} for s in scores]
    for _, l, c in flat:
        trial = [set(k) for k in kept]
        trial[l].add(c)
        if flops([len(k) for k in trial]) > target * flops.dense:
            break
        kept = trial
    return kept


def test_global_pruning_is_one_threshold_over_all_layers():
    model = C.SmallResNet((4, 8, 8), (1, 1, 1), 3)
    flops = C.UnitFlops(model, (3, 8, 8))
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        scores = [torch.randn(c, generator=g) * (1 + trial % 3) + trial % 2 * i for i, c in enumerate(flops.C)]
        target = [0.4, 0.5, 0.7, 0.9][trial % 4]
        hard, t = PS.global_pruning(scores, flops, target)
        kept = [set(torch.nonzero(m).flatten().tolist()) for m in hard]
        assert kept == _slow_global_pruning(scores, flops, target)
        assert flops([len(k) for k in kept]) <= target * flops.dense
        for s, k in zip(scores, kept):
            top = int(torch.argmax(s))
            # one threshold t for every layer: kept <=> score >= t (each unit's top channel is always kept)
            assert all((c in k) == (float(s[c]) >= t or c == top) for c in range(len(s)))
    # global, not per layer: a unit whose scores are all higher is kept whole before the others grow
    scores = [torch.zeros(4), torch.full((8,), 5.0) + torch.arange(8.0) / 10, torch.arange(8.0) / 10]
    hard, _ = PS.global_pruning(scores, flops, 0.6)
    assert int(hard[1].sum()) == 8 and int(hard[0].sum()) == 1
    with pytest.raises(ValueError, match="MACs target 0.01 is below"):
        PS.global_pruning(scores, flops, 0.01)


def test_straight_through_masks_are_binary_with_sigmoid_gradients():
    model = C.SmallResNet((4, 8, 8), (1, 1, 1), 3)
    flops = C.UnitFlops(model, (3, 8, 8))
    g = torch.Generator().manual_seed(1)
    scores = [torch.randn(c, generator=g).requires_grad_(True) for c in flops.C]
    hard, t = PS.global_pruning(scores, flops, 0.5)
    masks = PS.straight_through_masks(scores, hard, t)
    for m, h in zip(masks, hard):
        assert torch.equal(m.detach(), h) and set(m.detach().unique().tolist()) <= {0.0, 1.0}  # exactly binary
        assert 0 < int(h.sum()) <= len(h)
    w = [torch.randn(len(s), generator=g) for s in scores]
    sum((wi * m).sum() for wi, m in zip(w, masks)).backward()
    for s, wi in zip(scores, w):  # d m / d s = sigma'(s - t): straight through the sigmoid
        sig = torch.sigmoid(s.detach() - t)
        assert torch.allclose(s.grad, wi * sig * (1 - sig), atol=1e-7)
    # the masked network really is the binary one: equal to the physically pruned network
    x = torch.randn(5, 3, 8, 8)
    pruned = C.prune(_randomise_bn(model), [torch.nonzero(h).flatten() for h in hard])
    assert torch.allclose(C.masked_forward(model, x, masks), pruned(x), atol=1e-5)


def test_actstats_hypernet_is_recurrent_across_layers():
    torch.manual_seed(0)
    H = PS.ActStatsHyperNet(hidden=8, init_keep=0.5)
    nn.init.normal_(H.head.weight)
    feats = [torch.rand(4, PS.N_CHANNEL_FEATS), torch.rand(6, PS.N_CHANNEL_FEATS), torch.rand(5, PS.N_CHANNEL_FEATS)]
    lf = torch.rand(3, PS.N_LAYER_FEATS)
    k1, _ = H(feats, lf)
    feats2 = [feats[0] * 3.0, feats[1], feats[2]]
    k2, _ = H(feats2, lf)
    # changing only the first layer's inputs changes the later layers' sparsity (the LSTM state carries it)
    assert not torch.isclose(k1[2], k2[2])
    assert ((k1 >= 0.05) & (k1 <= 1)).all()
    # initial keep ratio when the head weight is zero
    H0 = PS.ActStatsHyperNet(hidden=8, init_keep=0.7)
    assert torch.allclose(H0(feats, lf)[0], torch.full((3,), 0.7), atol=1e-5)


def _tiny_trained():
    torch.manual_seed(0)
    x, y = images.generate(64, 4, 12, seed=0)
    m = C.SmallResNet((4, 8), (1, 1), 4)
    C.train(m, x, y, 1, 0.05, 32, 0)
    return m, x, y


HCFG = dict(
    steps=3,
    batch_size=16,
    lr=0.01,
    prompt_lr=0.05,
    prompt_pad=2,
    hidden=8,
    k_min=0.05,
    tau=0.1,
    temp_start=2.0,
    temp_end=0.5,
    flops_weight=20.0,
)


def test_prompt_is_learned_only_by_pass():
    m, x, y = _tiny_trained()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    border = PS.Prompt((3, 12, 12), 2).border
    _, info = PS.METHODS.get("pass")(m, x, y, (3, 12, 12), 0.5, HCFG, 0)
    assert (info["prompt"] * border).abs().sum() > 0  # the prompt moved
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # dense weights frozen
    assert all(p.requires_grad for p in m.parameters())  # and trainable again afterwards
    _, info0 = PS.METHODS.get("pass_noprompt")(m, x, y, (3, 12, 12), 0.5, HCFG, 0)
    assert info0["prompt"].abs().sum() == 0
    _, _, _, pix = PS.train_actstats(m, x, y, (3, 12, 12), 0.5, HCFG, prompt=True, seed=0)
    assert (pix * border).abs().sum() > 0
    _, _, _, pix0 = PS.train_actstats(m, x, y, (3, 12, 12), 0.5, HCFG, prompt=False, seed=0)
    assert pix0.abs().sum() == 0
    # only the border carries the prompt
    p = PS.Prompt((3, 12, 12), 2)
    p.pixels.data.fill_(1.0)
    z = p(torch.zeros(1, 3, 12, 12))
    assert z[0, :, 2:10, 2:10].abs().sum() == 0 and z[0, :, :2].abs().min() == 1


@pytest.mark.parametrize("method", ["pass", "pass_noprompt"])
def test_pass_keep_counts_come_from_one_global_threshold(method):
    m, x, y = _tiny_trained()
    keep, info = PS.METHODS.get(method)(m, x, y, (3, 12, 12), 0.5, HCFG, 0)
    t = info["threshold"]
    for k, s in zip(keep, info["scores"]):
        want = {c for c in range(len(s)) if float(s[c]) >= t} | {int(torch.argmax(s))}
        assert set(k.tolist()) == want
    assert info["ratios"] == [len(k) / w for k, w in zip(keep, C.widths(m))]
    assert len(info["history"]) == HCFG["steps"] and all(h["flops_ratio"] <= 0.5 for h in info["history"])


@pytest.mark.parametrize("method", ["l1_uniform", "pass", "pass_noprompt", "pass_actstats"])
def test_methods_hit_the_same_budget(method):
    m, x, y = _tiny_trained()
    keep, info = PS.METHODS.get(method)(m, x, y, (3, 12, 12), 0.5, HCFG, 0)
    uf = C.UnitFlops(m, (3, 12, 12))
    macs = C.count_flops(C.prune(m, keep), (3, 12, 12))["macs"]
    assert macs <= 0.5 * uf.dense
    assert macs >= 0.5 * uf.dense - max(uf.per_channel())  # no whole channel left unused


def test_l1_uniform_keeps_largest_filters():
    m = C.SmallResNet((4,), (1,), 2)
    w = m.layers[0][0].conv1.weight
    w.data = torch.ones_like(w) * torch.tensor([0.1, 3.0, 0.2, 2.0]).view(4, 1, 1, 1)
    keep, _ = PS.l1_uniform(m, None, None, (3, 8, 8), 0.7, HCFG, 0)
    k = sorted(keep[0].tolist())
    assert k == sorted([1, 3, 2, 0][: len(k)])


def test_save_and_load_pruned_roundtrip(tmp_path):
    m = _randomise_bn(C.SmallResNet((4, 8), (1, 1), 3))
    keep = _random_keep(m, 1)
    pruned = C.prune(m, keep)
    arch = {"kind": "small_resnet", "widths": [4, 8], "blocks": [1, 1], "n_classes": 3, "in_ch": 3}
    pass_pipeline.save_model(tmp_path / "p", pruned, arch, keep)
    back = pass_pipeline.load_model(tmp_path / "p")
    x = torch.randn(3, 3, 8, 8)
    assert torch.equal(back(x), pruned(x))


def test_bad_inputs():
    with pytest.raises(KeyError, match="allowed: l1_uniform, pass, pass_actstats, pass_noprompt"):
        PS.METHODS.get("taylor")
    with pytest.raises(ValueError, match="pad"):
        PS.Prompt((3, 8, 8), 4)
    H, wf = _hyper(widths=(4, 6))
    with pytest.raises(ValueError, match=r"widths \[4, 5\], hyper-network built for \[4, 6\]"):
        H([wf[0], torch.rand(5, PS.N_WEIGHT_FEATS)])
    m = C.SmallResNet((4, 8), (1, 1), 3)
    with pytest.raises(ValueError, match="keep lists"):
        C.prune(m, [torch.tensor([0])])
    with pytest.raises(ValueError, match="keep indices"):
        C.prune(m, [torch.tensor([0, 9]), torch.tensor([1])])
    with pytest.raises(ValueError, match="n_classes"):
        images.generate(100, n_classes=13)
    with pytest.raises((ValueError, ImportError), match="unknown model kind|needs torchvision"):
        C.build({"kind": "no_such_net", "n_classes": 3})


def test_generated_images_have_class_structure():
    x, y = images.generate(200, 10, 16, seed=3)
    x2, y2 = images.generate(200, 10, 16, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)  # deterministic
    assert x.shape == (200, 3, 16, 16) and torch.bincount(y).tolist() == [20] * 10
    # colour family is visible in the channel means: warm classes (0-4) redder than cool (5-9)
    red_minus_blue = (x[:, 0] - x[:, 2]).mean((1, 2))
    assert red_minus_blue[y < 5].mean() > red_minus_blue[y >= 5].mean() + 0.5


def test_per_image_correctness_gives_the_accuracy():
    torch.manual_seed(0)
    x, y = images.generate(50, 4, 12, seed=0)
    model = C.build({"kind": "small_resnet", "n_classes": 4, "in_ch": 3, "widths": [4, 8], "blocks": [1, 1]})
    ok = C.correct(model, x, y, batch_size=7)
    assert ok.dtype == torch.bool and ok.shape == (50,)
    assert C.accuracy(model, x, y) == int(ok.sum()) / 50 == pytest.approx((model(x).argmax(-1) == y).float().mean().item())


def _items(runs: dict, n=40):
    return pd.DataFrame(
        [{"method": m, "target": t, "seed": s, "n": n, "correct": stats.bits(np.arange(n) < k)} for (m, t, s), k in runs.items()]
    )


def test_summary_and_paired_difference_on_hand_made_images():
    items = _items(
        {("dense", 1.0, 0): 30, ("pass", 0.5, 0): 24, ("l1_uniform", 0.5, 0): 20, ("pass", 0.5, 1): 26, ("l1_uniform", 0.5, 1): 21}
    )
    a = summary.accuracy(items, "pass", 0.5, [0, 1])
    assert a.mean == pytest.approx(25 / 40) and a.method == "bootstrap over 40 test images (2000 resamples, mean of 2 seeds)"
    d = summary.difference(items, ("pass", 0.5), ("l1_uniform", 0.5))
    # every image l1_uniform gets right PASS gets right too: no resample favours l1_uniform
    assert d.mean == pytest.approx(((24 - 20) + (26 - 21)) / 80) and d.lo >= 0 and d.n_seeds == 2
    assert summary.difference(items, ("pass", 0.5), ("dense", 1.0)).n_seeds == 1  # the seeds both have
    table = items.drop(columns=["n", "correct"]).assign(metric="accuracy", value=[30 / 40, 0.6, 0.5, 0.65, 0.525])
    table = pd.concat([table, table.assign(metric="macs", value=[100.0, 50.0, 49.0, 50.0, 49.0])])
    t = summary.summary(table, items).set_index(["method", "metric"])
    assert t.loc[("pass", "accuracy"), "mean"] == pytest.approx(0.625) and t.loc[("pass", "macs"), "interval"] == "2 seeds, no interval"
    with pytest.raises(ValueError, match="0 rows, expected 1"):
        summary.correct(items, "pass", 0.5, [0, 5])


@pytest.mark.workflow
def test_pass_workflow_outputs(smoke):
    t = pd.read_csv(smoke.results("tables", "pass.csv"))
    import yaml

    cfg = yaml.safe_load((smoke.workdir / "config/smoke.yaml").read_text())["vision"]["pass"]
    wide = t.pivot_table(index=["method", "target"], columns="metric", values="value").reset_index()
    assert set(wide.method) == {"dense", *cfg["methods"]}
    for tgt in cfg["flops_targets"]:
        at = wide[wide.target == tgt]
        assert len(at) == len(cfg["methods"])
        assert (at.flops_ratio <= tgt + 1e-9).all()
        assert at.macs.max() - at.macs.min() <= 0.1 * at.macs.max()  # equal budgets
        assert ((at.accuracy >= 0) & (at.accuracy <= 1)).all()
    for col in ("seed", "config", "versions", "device", "wall_s"):
        assert col in t.columns
    kept = t[(t.method != "dense")].kept.map(json.loads)
    assert all(len(k) == len(json.loads(t[t.method != "dense"].widths.iloc[0])) for k in kept)
    assert smoke.results("figures", "pass-accuracy.png").stat().st_size > 1000
    assert smoke.results("figures", "pass-channels.png").stat().st_size > 1000
    s = pd.read_csv(smoke.results("tables", "pass-summary.csv"))
    acc = s[s.metric == "accuracy"]
    assert len(acc) == 1 + len(cfg["methods"]) * len(cfg["flops_targets"]) and (acc.n_seeds == len(cfg.get("seeds", [0]))).all()
    assert ((acc.ci_lo <= acc["mean"] + 1e-12) & (acc["mean"] <= acc.ci_hi + 1e-12)).all()
    items = pd.read_csv(smoke.results("vision", "pass", "items.csv"))
    for _, r in items.iterrows():
        row = t[(t.method == r.method) & (t.target == r.target) & (t.seed == r.seed) & (t.metric == "accuracy")]
        assert stats.unbits(r.correct).mean() == pytest.approx(float(row.value.iloc[0]))

"""Device consistency of every registered method, on a machine without a GPU (issue 19, item 1).

A tensor made without ``device=`` (``torch.ones/zeros/arange/tensor/...``) lives on
the CPU; on a GPU run it then meets weights on the GPU and the job dies with
"Expected all tensors to be on the same device" -- a bug no CPU run shows. These
tests run the core of every registered method under
:class:`fake_accelerator.FakeAccelerator` (tests/fake_accelerator.py), a
``TorchFunctionMode`` that simulates a second device: the model is moved to the
fake accelerator (``model.to(ACC)``), data enter on the CPU as they come from
disk, and any op that mixes a CPU tensor with an accelerator tensor raises
:class:`DeviceMismatch` where CUDA would raise, ``.numpy()`` of an accelerator
tensor included. The values stay real (the data live on the CPU throughout; only
the device is simulated), so sorting, thresholds, ``.item()`` and training loops
run as they do on a GPU. Running the methods on the ``meta`` device instead was
rejected: no values, so every pruning threshold, SVD rank and training loop stops
before it meets a device bug.

Each test iterates a registry (``PRUNERS``, ``ALLOCATORS``, ``XMIN_RULES``,
``lowrank`` ``ALLOCATIONS``/``MODES``, quant ``QUANTISERS``, ``variants.KINDS``, memtrain ``VARIANTS``,
``INTERVENTIONS``, speech ``VARIANTS``/``SELECT``, PASS ``METHODS``, fusion
``GENERATED``), so a newly registered method is covered without a change here;
``FAST`` settings keep known methods small, a new one runs with its defaults.
"""

import copy
import json

import pytest
import torch

from compbench.prune.methods import PRUNERS
from compose.compose_world import tiny_model as compose_model
from compose.compose_world import world_setup  # noqa: F401  (the compose tests' small knowledge world, a fixture)
from conftest import make_tiny_llama
from fake_accelerator import ACC, DeviceMismatch, FakeAccelerator, on_acc, on_cpu, where


def llama(**kw):
    return make_tiny_llama(**{"vocab": 64, "hidden": 16, "inter": 32, "layers": 2, "heads": 2, "positions": 32, **kw})


def cpu_ids(n, length, vocab=64, seed=0):
    return on_cpu(torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(seed)))


def assert_on_acc(model):
    off = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if not on_acc(t)]
    assert not off, f"left off the accelerator: {off[:5]}"


# ------------------------------------------------------------------ the checker itself


def test_the_fake_accelerator_raises_where_cuda_raises_and_only_there():
    from torch import nn

    with FakeAccelerator():
        W = torch.randn(4, 4).to(ACC)
        assert W.device == ACC and on_acc(W) and where(torch.randn(4)) is False
        with pytest.raises(DeviceMismatch, match="same device"):
            W @ torch.ones(4)  # a factory without device= makes a CPU tensor
        with pytest.raises(DeviceMismatch, match="indices"):
            torch.ones(16, dtype=torch.bool)[torch.argsort(W.flatten())[:3]] = False
        with pytest.raises(DeviceMismatch, match="numpy"):
            W.sum(0).numpy()
        with pytest.raises(DeviceMismatch, match="generator"):
            torch.rand(4, generator=torch.Generator(), device=W.device)
        with pytest.raises(DeviceMismatch):
            torch.cat([W, torch.zeros(1, 4)])
        # what CUDA allows: CPU scalars, CPU indices, cross-device copies, explicit moves
        assert on_acc(W * torch.tensor(2.0)) and on_acc(W[torch.arange(2)])
        W[torch.tensor([0, 1])] = torch.zeros(2, 4, device=W.device)
        W.copy_(torch.randn(4, 4))
        assert on_acc(W @ torch.ones(4, device=W.device)) and on_acc(torch.zeros_like(W)) and on_acc(W.new_zeros(3))
        assert not on_acc(W.cpu()) and W.cpu().numpy().shape == (4, 4) and on_acc(W.cpu().to(W.device))
        assert on_acc(torch.ones(2).to(W)) and not on_acc(torch.ones(2).to(torch.float64))
        lin = nn.Linear(4, 2).to(ACC)
        assert_on_acc(lin)
        lin(torch.randn(3, 4).to(ACC)).sum().backward()
        assert on_acc(lin.weight.grad)
        torch.optim.AdamW(lin.parameters()).step()
        torch.nn.utils.clip_grad_norm_(lin.parameters(), 1.0)
        assert_on_acc(lin)
        with pytest.raises(DeviceMismatch):
            lin(torch.randn(3, 4))  # input left on the CPU
        assert on_acc(nn.Parameter(torch.zeros(2, device=W.device)))


# ------------------------------------------------------------------ pruning, allocation, spectra


@pytest.mark.parametrize("method", PRUNERS.names())
def test_pruning_methods_keep_to_the_weights_device(method):
    from compbench.prune.methods import prune_model

    for ratios, nm in (({0: 0.5, 1: 0.7}, None), (None, (2, 4))):
        model = llama()
        dense = {n: p.detach().clone() for n, p in model.named_parameters()}
        with FakeAccelerator():
            model.to(ACC)
            masks, changed = prune_model(model, method, ratios, nm, cpu_ids(4, 16), ACC)
            assert_on_acc(model)
        assert all(where(m) is False for m in masks.values())  # stored masks come back to the CPU
        for name, keep in masks.items():
            w = dict(model.named_parameters())[f"{name}.weight"]
            assert torch.equal(w == 0, ~keep | (dense[f"{name}.weight"] == 0) | (w == 0))
            assert (w[~keep] == 0).all()


def test_spectra_xmin_rules_and_every_allocation_on_the_accelerator():
    """The pipeline's device steps of the allocations: the ESD fits (every xmin rule,
    model on the CPU, weights moved to the device by `analyse`) and OWL's outlier
    ratios (Wanda scores on the calibration pass, as scripts/owl_outliers.py)."""
    from compbench import calibration
    from compbench.prune.wanda import scores
    from compbench.spectra import allocate, esd

    model = on_cpu(llama(hidden=32, inter=64))
    lods = []
    with FakeAccelerator():
        matrices, eigs = esd.analyse(model, rules=esd.XMIN_RULES.names(), device=ACC, progress=False)
        assert all(where(e) is False for e in eigs.values())
        model.to(ACC)

        def on_block(b, linears, stats):
            lods.append(allocate.owl_lod([scores(m.weight.data.float(), stats[n]) for n, m in linears.items()], 5.0))

        calibration.sequential(model, cpu_ids(4, 16), ACC, want_hessian=False, on_block=on_block)
    blocks = esd.block_table(matrices, esd.XMIN_RULES.names())
    assert len(lods) == 2
    for rule in esd.XMIN_RULES.names():
        assert blocks[f"alpha_{rule}"].notna().any(), rule
    metrics = {"alpha": blocks["alpha_full"].to_numpy(), "lod": lods}
    for name in allocate.ALLOCATORS.names():
        ratios, _ = allocate.allocate(name, 0.5, blocks["params"].to_numpy(), metrics)
        assert allocate.weighted_mean(ratios, blocks["params"].to_numpy()) == pytest.approx(0.5)


# ------------------------------------------------------------------ variants (evaluation path) and low-rank


def _variant_dirs(tmp_path):
    """One stored variant of every kind in variants.KINDS, built from one dense base."""
    from compbench import variants
    from compbench.lowrank import compress as lowrank
    from compbench.memtrain import variant as trained
    from compbench.prune import masked
    from compbench.prune.methods import prune_model
    from compbench.quant import variant as quant
    from compbench.quant.methods import quantise_model

    base = tmp_path / "base"
    model = llama()
    model.save_pretrained(base)
    masks, changed = prune_model(copy.deepcopy(model), "sparsegpt", {0: 0.5, 1: 0.5}, None, cpu_ids(4, 16), "cpu")
    masked.save(tmp_path / "masked", base, masks, changed, {"method": "sparsegpt"})
    lr = lowrank.compress(copy.deepcopy(model), {"model.layers.0.mlp.down_proj": 4, "model.layers.1.self_attn.q_proj": 3})
    lowrank.save(tmp_path / "lowrank", base, lr, {"allocation": "uniform"})
    tuned = copy.deepcopy(model)
    with torch.no_grad():
        tuned.model.layers[0].mlp.up_proj.weight.mul_(0.5)
    trained.save(tmp_path / "trained", base, tuned, model.state_dict(), {"variant": "adamw"})
    pruned, _ = variants.load(tmp_path / "masked")
    quantised, _ = quantise_model(pruned, "rtn", 4, 8, keep=masked.load_masks(tmp_path / "masked"))
    quant.save(tmp_path / "quant", base, quantised, {"method": "rtn"}, pruned_dir=tmp_path / "masked")
    return {
        "dense": base,
        "masked": tmp_path / "masked",
        "lowrank": tmp_path / "lowrank",
        "trained": tmp_path / "trained",
        "quant": tmp_path / "quant",
    }


def test_every_variant_kind_loads_onto_the_accelerator_and_evaluates(tmp_path):
    from compbench import variants
    from compbench.perplexity import evaluate

    dirs = _variant_dirs(tmp_path)
    for kind in variants.KINDS.names():
        variants._kind(kind)
    assert set(dirs) == set(variants.KINDS.names()), "a new variant kind: add one stored example to _variant_dirs"
    for kind, path in dirs.items():
        with FakeAccelerator():
            model, _ = variants.load(path, device=ACC)
            assert_on_acc(model)
            ppl = evaluate(model, on_cpu(torch.randint(0, 64, (200,))), 16, 4, ACC)["perplexity"]
        assert ppl > 1, kind


def test_every_quantisation_method_keeps_to_the_weights_device():
    from compbench.prune.methods import prune_model
    from compbench.quant.methods import QUANTISERS, quantise_model

    for method in QUANTISERS.names():
        for nm in (None, (2, 4)):
            model = llama()
            keep = prune_model(model, "magnitude", None, nm, None, "cpu")[0] if nm else None  # masks on the CPU, as loaded
            with FakeAccelerator():
                model.to(ACC)
                quantised, _ = quantise_model(model, method, 4, 8, cpu_ids(4, 16), ACC, keep)
                assert_on_acc(model)
            assert quantised and all(where(q.codes.codes) is False and where(q.codes.scale) is False for q in quantised.values())
            if keep:
                assert all((dict(model.named_parameters())[f"{n}.weight"][~k] == 0).all() for n, k in keep.items()), method


def test_lowrank_allocations_and_finetuning_modes_on_the_accelerator():
    from compbench.lowrank import compress as lowrank
    from compbench.lowrank import finetune as lrc
    from compbench.spectra import esd

    model = llama(hidden=32, inter=64)
    matrices, eigs = esd.analyse(model, rules=["full"], progress=False)
    sv = {k: v.to(torch.float64).clamp_min(0).sqrt().flip(0) for k, v in eigs.items()}  # as scripts/lowrank_compress.py
    spec = lrc.FTSpec(steps=2, batch_size=2, lr=1e-3, warmup=1, weight_decay=0.0, eval_every=2, eval_windows=2, seed=0, lora_r=2)
    ids = on_cpu(torch.randint(0, 64, (400,)))
    first = matrices.module.iloc[0]
    for allocation in lowrank.ALLOCATIONS.names():
        with FakeAccelerator():  # singular values computed on the device, one with its exact zeros dropped
            on_device = {k: v.to(ACC)[: len(v) - 2 if k == first else None] for k, v in sv.items()}
            assert (
                lowrank.allocate(allocation, matrices, on_device, 0.3)[0].full_rank.tolist() == matrices[["rows", "cols"]].min(1).tolist()
            )
        alloc, _ = lowrank.allocate(allocation, matrices, sv, 0.3)
        ranks = {r.module: int(r.kept_rank) for r in alloc.itertuples() if r.lrc}
        assert ranks, allocation
        for mode in lrc.MODES.names():
            m = copy.deepcopy(model)
            with FakeAccelerator():
                m.to(ACC)
                lowrank.compress(m, ranks)
                assert_on_acc(m)
                out, curve, _ = lrc.finetune(m, mode, ids, ids, 16, spec, ACC)
                assert_on_acc(out)
            assert len(curve) == 3, (allocation, mode)


# ------------------------------------------------------------------ memory-efficient training


def test_every_memtrain_variant_steps_on_the_accelerator():
    from compbench import pretrain
    from compbench.memtrain import recipe
    from compbench.memtrain.methods import Context, names

    hyper = {
        "lora": {"rank": 2},
        "galore": {"rank": 2, "update_proj_gap": 1},
        "qgalore": {"rank": 2, "update_proj_gap": 1, "weight_group_size": 16, "proj_group_size": 16},
    }
    spec = pretrain.TrainSpec(steps=3, batch_size=2, lr=1e-3, warmup=1, weight_decay=0.01, eval_every=3, eval_windows=2, seed=0)
    ids = on_cpu(torch.randint(0, 64, (400,)))
    for name in names():
        with FakeAccelerator():
            plain, curve, summary, _ = recipe.run(
                llama(training=True), name, recipe.hyper_for(name, hyper), Context(lr=1e-3, weight_decay=0.01), ids, ids, 16, spec, ACC
            )
            assert_on_acc(plain)
        assert len(curve) == 3 and summary["bytes_total"] > 0, name


# ------------------------------------------------------------------ composable interventions

FAST = {  # small settings for the known interventions; a new one runs with its defaults
    "ft": {"steps": 2},
    "lora": {"steps": 2},
    "memit": {"v_steps": 2, "n_stats": 4},
    "gptq": {"group_size": 32},
    "awq": {"group_size": 32, "grid": 3},
    "ga": {"steps": 2, "max_loss": None},
    "gd": {"steps": 2, "max_loss": None},
    "rmu": {"steps": 2},
}


def test_every_intervention_and_the_evaluation_on_the_accelerator(world_setup, tmp_path):  # noqa: F811 (the fixture)
    from compbench.compose import metrics as em
    from compbench.compose import pipeline
    from compbench.compose.interventions.methods import INTERVENTIONS, Context

    _, tok, data, ids = world_setup
    ids = on_cpu(ids[:4])
    for name in INTERVENTIONS.names():
        model = compose_model(seed=0)
        before = copy.deepcopy(model.state_dict())
        with FakeAccelerator():
            model.to(ACC)
            ctx = Context(tok, ACC, data, ids, cache_dir=tmp_path / name)
            (tmp_path / name).mkdir()
            INTERVENTIONS.get(name)(model, ctx, **FAST.get(name, {}))
            assert_on_acc(model)
        assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items()), f"{name} changed nothing"
    with FakeAccelerator():
        model.to(ACC)
        ctx = Context(tok, ACC, data, ids)
        base = em.predictions(model, tok, data.locality, ACC)
        res = pipeline.evaluate(model, ctx, base, on_cpu(ids.flatten()), 16, 2)
    assert res["locality"] == pytest.approx(1.0) and res["perplexity"] > 1


# ------------------------------------------------------------------ speech, vision (PASS), fusion


def test_every_speech_variant_and_ddp_rule_trains_on_the_accelerator():
    from compbench.speech import ddp, features, grid, train

    g = torch.Generator().manual_seed(0)
    texts = ["a b" if i % 2 else "b" for i in range(10)]
    splits = ["train"] * 6 + ["dev"] * 2 + ["test"] * 2
    feats = [on_cpu(torch.randn(24 + 4 * (i % 3), 16, generator=g)) for i in range(10)]
    starts = [[0.0, 0.12] if i % 2 else [0.0] for i in range(10)]  # word alignments (seconds), for DDP's segments
    data = train.Data(feats, texts, splits, features.vocabulary(texts, "word"), "word", 0.01, word_starts=starts)
    sp = {
        "model": dict(d_model=8, num_heads=2, ffn_dim=16, num_layers=2, conv_kernel=3, subsample_channels=2, dropout=0.0),
        "train": dict(epochs=2, batch_size=3, lr=0.003, warmup_steps=1, weight_decay=0.0, grad_clip=5.0, seed=0, specaugment=dict(freq_mask=2, time_mask=4)),
        "variants": dict(
            dense=True,
            lrsms=dict(settings=[dict(name="r50", attn=[0.5, 0.5], ff=[0.5, 0.5])], random_init=["r50"], min_rank=2),
            ddp=dict(fractions=[0.5], granularities=["utterance", "segment"], rule="epsilon_greedy", epsilon=0.2, max_skip=2,
                     every_epochs=1, warmup_epochs=1, rescore="all", segment_s=0.15, budgets=["epochs"]),
            msrs=dict(modes=["sparse", "dense"], temperature=1.0, final_temperature=200.0, anneal_steps=2, init_density=0.6, lam=5.0, score_lr=0.2, check_every=1,
                      flip_threshold=0.2, patience=1, min_steps=2),
        ),
    }  # fmt: skip
    runs = grid.runs(sp)
    ddp_runs = [r for r in runs.values() if r["variant"] == "ddp"]
    rules = set(ddp.SELECT.names()) - {r["rule"] for r in ddp_runs}  # the other selection rules, on segments
    runs.update({f"ddp-segment-{rule}": {**ddp_runs[-1], "rule": rule} for rule in sorted(rules)})
    assert ddp_runs[-1]["granularity"] == "segment"
    assert {r["variant"] for r in runs.values()} == set(train.VARIANTS.names())
    for name, run in runs.items():
        with FakeAccelerator():
            out = train.train(run, sp, data, ACC)
            assert_on_acc(out["model"])
        assert 0 <= out["metrics"]["test_wer"], name


def test_every_pass_method_prunes_and_finetunes_on_the_accelerator():
    from compbench.vision import channels as C
    from compbench.vision import images, pipeline
    from compbench.vision.pass_sparsity import METHODS

    x, y = images.generate(64, 4, 12, seed=0)
    data = on_cpu({"x_train": x, "y_train": y, "x_test": x[:16], "y_test": y[:16]})
    cfg = {
        "seed": 0,
        "hypernet": dict(steps=2, batch_size=16, lr=0.01, prompt_lr=0.05, prompt_pad=2, hidden=8, k_min=0.05, tau=0.1,
                         temp_start=2.0, temp_end=0.5, flops_weight=20.0),
        "finetune": dict(epochs=1, lr=0.02, batch_size=32),
        "latency": dict(batch=4, repeats=1),
    }  # fmt: skip
    for method in METHODS.names():
        torch.manual_seed(0)
        dense = C.SmallResNet((4, 8), (1, 1), 4)
        with FakeAccelerator():
            dense.to(ACC)
            C.train(dense, data["x_train"], data["y_train"], 1, 0.05, 32, 0)
            pruned, keep, rec, _ = pipeline.prune_and_finetune(cfg, method, 0.5, dense, data, ACC)
            assert_on_acc(pruned)
        assert 0 <= rec["accuracy"] <= 1 and rec["macs"] > 0, method


def test_moe_fusion_on_every_generated_task_on_the_accelerator():
    import random

    from compbench import tokenizer as tk
    from compbench.fusion import moe as fusion
    from compbench.fusion import tasks as text_tasks

    names = text_tasks.GENERATED.names()
    rng = random.Random(0)
    tok = tk.train([text_tasks.GENERATED.get(n)(rng)[0] for _ in range(100) for n in names] + ["yes", "no"] * 20, vocab_size=300)
    model = make_tiny_llama(vocab=len(tok), hidden=16, inter=24, layers=2, heads=2, positions=64, seed=0, pad_token_id=tok.pad_token_id)
    specs = [text_tasks.build({"name": n, "source": "generated"}, 16, 8, 0) for n in names]
    cfg = {"eval_batch_size": 8, "n_preferences": 2, "ta_grid": [0.0, 1.0], "n_interpolation": 2, "other_lambda": 0.5}
    with FakeAccelerator():
        model.to(ACC)
        tasks = [fusion.TaskData(tok, json.loads(json.dumps(s)), "train", ACC) for s in specs]
        taus = []
        for d in tasks:
            tau, _ = fusion.finetune(copy.deepcopy(model), d, steps=1, batch_size=4, lr=1e-3, seed=0)
            taus.append(on_cpu({k: v.detach().cpu() for k, v in tau.items()}))  # stored, loaded back on the CPU
        fused = fusion.FusedModel(copy.deepcopy(model), taus, router_hidden=4)
        fusion.train_router(fused, tasks, steps=1, batch_size=4, lr=0.01, alpha=1.0, seed=0)
        assert_on_acc(fused)
        pair = fusion.FusedModel(copy.deepcopy(model), taus[:2], router_hidden=4)  # the sweep is on the 2-task simplex
        rows = fusion.sweep(model, taus[:2], pair.router, tasks[:2], cfg)
    assert {r["task"] for r in rows} == set(names[:2]) and len(names) >= 2

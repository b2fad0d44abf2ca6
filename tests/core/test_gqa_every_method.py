"""Every language-model method on what the embedded tiny model never has and real
models do (SmolLM2-135M: grouped-query attention with k/v projections narrower than
q, tied input/output embeddings): conftest.make_gqa_llama. The methods are taken
from the registries, so a new method is covered without touching this file.

Each test runs the method for a few steps or on a few windows, checks what must hold
on any model (shapes, sparsity, tied weights, the stored variant reproducing the
in-memory one) and that the numbers stay finite."""

import copy
import importlib.util
import math

import pytest
import torch

from compbench import blocks, calibration, variants
from compbench.prune import masked
from compbench.prune.methods import PRUNERS, prune_model
from compbench.spectra import allocate as spectra_allocate
from compbench.spectra import esd
from conftest import ROOT, make_gqa_llama

V = 400  # the compose tests' world tokenizer has 400 tokens
gqa = lambda seed=0: make_gqa_llama(vocab=V, positions=64, seed=seed)  # noqa: E731

_spec = importlib.util.spec_from_file_location("compose_world", ROOT / "tests" / "compose" / "compose_world.py")
compose_world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compose_world)
world_setup = compose_world.world_setup  # the small knowledge world, its tokenizer, study data and calibration ids


def _ids(n=4000, seed=0):
    return torch.randint(0, V, (n,), generator=torch.Generator().manual_seed(seed))


def _tied(model) -> bool:
    return model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def _finite_logits(model, x):
    with torch.no_grad():
        out = model(x).logits
    assert torch.isfinite(out).all()
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("gqa") / "base"
    model = gqa()
    assert model.model.layers[0].self_attn.k_proj.weight.shape == (32, 64) and _tied(model)
    model.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def spectra(base):
    model, _ = variants.load(base)
    matrices, eigs = esd.analyse(model, progress=False)
    assert len(matrices) == 2 * 7 and set(matrices.query("kind == 'k_proj'").rows) == {32}
    return matrices, eigs


@pytest.fixture(scope="module")
def calib():
    return _ids(8 * 32, seed=1).view(8, 32)


def _metrics(spectra, calib, base):
    matrices, _ = spectra
    table = esd.block_table(matrices, ["peak"])
    model, _ = variants.load(base)
    lod = {}

    def on_block(b, linears, stats):
        from compbench.prune.wanda import scores

        lod[b] = spectra_allocate.owl_lod([scores(m.weight.data.float(), stats[n]) for n, m in linears.items()], 5.0)

    calibration.sequential(model, calib, "cpu", want_hessian=False, on_block=on_block)
    return table, {"alpha": table["alpha_peak"].to_numpy(), "lod": [lod[b] for b in sorted(lod)]}


@pytest.mark.parametrize("allocation", spectra_allocate.ALLOCATORS.names())
def test_every_pruner_under_every_allocation_and_nm(tmp_path, base, spectra, calib, allocation):
    table, metrics = _metrics(spectra, calib, base)
    ratios, _ = spectra_allocate.allocate(allocation, 0.6, table["params"].to_numpy(), metrics)
    x = _ids(2 * 16, seed=2).view(2, 16)
    for method in PRUNERS.names():
        for nm in (None, (2, 4)):
            model, _ = variants.load(base)
            masks, changed = prune_model(model, method, None if nm else dict(enumerate(ratios)), nm, calib, "cpu")
            linears = blocks.linear_modules(model)
            assert set(masks) == {n for _, n, _ in linears} and _tied(model)
            for b, name, mod in linears:
                keep = masks[name]
                assert keep.shape == mod.weight.shape, name  # k/v: 32 x 64, not 64 x 64
                if nm:
                    assert ((~keep).reshape(keep.shape[0], -1, 4).sum(-1) == 2).all(), name
                else:
                    assert abs(1 - keep.float().mean().item() - ratios[b]) < 1 / keep.shape[1], (method, name)
            out = tmp_path / f"{method}-{allocation}-{nm}"
            masked.save(out, base, masks, changed, {"method": method})
            loaded, tok_dir = variants.load(out)
            assert str(tok_dir) == str(base) and _tied(loaded)
            torch.testing.assert_close(_finite_logits(loaded, x), _finite_logits(model, x))


def test_every_lowrank_allocation_and_finetune_mode_and_the_stored_variant(tmp_path, base, spectra):
    from compbench.lowrank import compress as lowrank
    from compbench.lowrank import finetune as lrc_finetune

    matrices, eigs = spectra
    sv = {k: v.to(torch.float64).clamp_min(0).sqrt().flip(0) for k, v in eigs.items()}  # as rule lowrank_compress
    x = _ids(2 * 16, seed=2).view(2, 16)
    spec = lrc_finetune.FTSpec(
        steps=3, batch_size=2, lr=1e-2, warmup=1, weight_decay=0.0, eval_every=3, eval_windows=2, seed=0, lora_r=2, lora_alpha=4
    )
    for allocation in lowrank.ALLOCATIONS.names():
        df, info = lowrank.allocate(allocation, matrices, sv, 0.5, min_ratio=0.0)
        ranks = {r.module: int(r.kept_rank) for r in df.itertuples() if r.lrc}
        assert any(".k_proj" in m for m in ranks), allocation  # the narrow GQA projections are factorised too
        model, _ = variants.load(base)
        lowrank.compress(model, ranks)
        for m, k in ranks.items():
            mod = model.get_submodule(m)
            assert mod.V.weight.shape[0] == k and mod.U.weight.shape[0] == int(df.set_index("module").rows[m])
        lowrank.save(tmp_path / allocation, base, model, {"allocation": allocation})
        loaded, _ = variants.load(tmp_path / allocation)
        assert _tied(loaded)
        torch.testing.assert_close(_finite_logits(loaded, x), _finite_logits(model, x))
        for mode in lrc_finetune.MODES.names():
            out, curve, summary = lrc_finetune.finetune(copy.deepcopy(model), mode, _ids(), _ids(seed=3), 16, spec, "cpu")
            assert len(curve) == spec.steps + 1 and math.isfinite(summary["val_loss_after"]), (allocation, mode)
            dest = tmp_path / f"{allocation}-{mode}"
            lowrank.save(dest, base, out, {"allocation": allocation, "mode": mode}, base_model=variants.load(base)[0])
            again, _ = variants.load(dest)
            assert _tied(again), (allocation, mode)
            torch.testing.assert_close(_finite_logits(again, x), _finite_logits(out, x), atol=1e-5, rtol=1e-5)


def test_every_quantisation_method_of_the_dense_and_of_a_pruned_model_round_trips(tmp_path, base, calib):
    from compbench.quant import variant as quant_variant
    from compbench.quant.methods import QUANTISERS, quantise_model

    x = _ids(2 * 16, seed=2).view(2, 16)
    pruned = tmp_path / "pruned"
    model, _ = variants.load(base)
    masks, changed = prune_model(model, "wanda", None, (2, 4), calib, "cpu")
    masked.save(pruned, base, masks, changed, {"method": "wanda", "nm": [2, 4]})
    for method in QUANTISERS.names():
        for on in (None, pruned):
            model, _ = variants.load(on or base)
            keep = masked.load_masks(on) if on else None
            quantised, _ = quantise_model(model, method, 4, 32, calib, "cpu", keep)
            k = model.model.layers[0].self_attn.k_proj
            assert set(quantised) == {n for _, n, _ in blocks.linear_modules(model)} and _tied(model), method
            assert quantised["model.layers.0.self_attn.k_proj"].codes.codes.shape == k.weight.shape == (32, 64)
            dest = tmp_path / f"{method}-{bool(on)}"
            quant_variant.save(dest, base, quantised, {"method": method}, pruned_dir=on)
            loaded, _ = variants.load(dest)
            assert _tied(loaded), method
            if on:
                assert all((loaded.get_submodule(n).weight[~m] == 0).all() for n, m in masks.items()), method
            # the stored scales are float16: the reloaded model is the in-memory one up to that rounding
            torch.testing.assert_close(_finite_logits(loaded, x), _finite_logits(model, x), rtol=1e-2, atol=1e-2)


def test_every_memtrain_variant_trains_a_few_steps_and_round_trips(tmp_path, base):
    from compbench import pretrain
    from compbench.memtrain import recipe
    from compbench.memtrain import variant as trained_variant
    from compbench.memtrain.methods import Context, names

    spec = pretrain.TrainSpec(steps=4, batch_size=2, lr=3e-3, warmup=1, weight_decay=0.0, eval_every=2, eval_windows=2, seed=0)
    hyper = {
        "lora": {"rank": 4},
        "galore": {"rank": 4, "update_proj_gap": 2},
        "qgalore": {"rank": 4, "update_proj_gap": 2, "weight_group_size": 16, "proj_group_size": 16},
    }
    base_model = variants.load(base)[0]
    x = _ids(2 * 16, seed=2).view(2, 16)
    for name in names():
        for train_embeddings in (False, True):
            plain, curve, summary, _ = recipe.run(
                variants.load(base)[0],
                name,
                recipe.hyper_for(name, hyper),
                Context(lr=3e-3, train_embeddings=train_embeddings),
                _ids(),
                _ids(400, seed=3),
                16,
                spec,
                torch.device("cpu"),
            )
            assert len(curve) == spec.steps and math.isfinite(summary["final_val_loss"]), name
            assert set(plain.state_dict()) == set(base_model.state_dict()) and _tied(plain), name
            k = "model.layers.0.self_attn.k_proj.weight"
            assert plain.state_dict()[k].shape == (32, 64)
            emb_same = torch.equal(plain.get_input_embeddings().weight, base_model.get_input_embeddings().weight)
            assert emb_same == (not train_embeddings or name == "lora"), (name, train_embeddings)
            dest = tmp_path / f"{name}-{train_embeddings}"
            trained_variant.save(dest, base, plain, base_model.state_dict(), {"method": name})
            loaded, _ = variants.load(dest)
            assert _tied(loaded), name
            torch.testing.assert_close(_finite_logits(loaded, x), _finite_logits(plain, x))


def test_every_intervention_runs_on_the_gqa_model(world_setup):
    from compbench.compose import metrics as em
    from compbench.compose import pipeline
    from compbench.compose.interventions.methods import INTERVENTIONS, Context

    _, tok, data, ids = world_setup
    assert len(tok) == V
    ctx = Context(tok, torch.device("cpu"), data, ids)
    base = gqa()
    base_pred = em.predictions(base, tok, data.locality, ctx.device)
    for name in INTERVENTIONS.names():
        iv = INTERVENTIONS.get(name)
        model = gqa()
        info = iv(model, ctx)
        assert isinstance(info, dict), name
        k = model.model.layers[0].self_attn.k_proj
        assert (k.in_features, k.out_features) == (64, 32) and _tied(model), name
        changed = [n for n, p in model.state_dict().items() if not torch.equal(p, base.state_dict()[n])]
        assert changed, f"{name} changed nothing"
        scores = pipeline.evaluate(model, ctx, base_pred, ids.flatten(), 32, 2)
        assert all(math.isfinite(v) for v in scores.values()), (name, scores)


def test_a_cached_first_step_gives_the_order_applying_it_would(world_setup, tmp_path):
    """Rule compose_first applies each intervention once and the runs read what it changed:
    for every intervention first and one of another category second, the model and the
    infos equal applying the whole order (tied embeddings included; through safetensors)."""
    from compbench.artifacts import load_tensors, save_tensors
    from compbench.compose import pipeline
    from compbench.compose.interventions.methods import INTERVENTIONS, Context

    _, tok, data, ids = world_setup
    ctx = Context(tok, torch.device("cpu"), data, ids)
    ivs = {n: {"method": n} for n in INTERVENTIONS.names()}
    for name in INTERVENTIONS.names():
        second = "ft" if INTERVENTIONS.get(name).category == "compress" else "wanda"
        steps = pipeline.sequence_steps(f"{name}__{second}", ivs)
        whole = gqa()
        want = pipeline.apply(whole, ctx, steps)
        base, first = gqa(), gqa()
        (info,) = pipeline.apply(first, ctx, steps[:1])
        save_tensors(tmp_path / f"{name}.safetensors", pipeline.changed_tensors(first, base))
        cached = gqa()
        pipeline.restore(cached, load_tensors(tmp_path / f"{name}.safetensors"))
        assert _tied(cached), name
        got = pipeline.apply(cached, ctx, steps, [info])
        assert got == want, name
        for k, v in whole.state_dict().items():
            assert torch.equal(cached.state_dict()[k], v), (name, k)

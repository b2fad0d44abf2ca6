"""Pretraining: seeded determinism and the learning-rate schedule."""

import math

import pytest
import torch
from transformers import LlamaForCausalLM

from compbench import models, pretrain

TM = {"hidden_size": 16, "intermediate_size": 32, "num_layers": 2, "num_heads": 2, "seq_len": 16}


def run(seed):
    torch.manual_seed(seed)
    model = LlamaForCausalLM(models.tiny_config(TM, vocab_size=40))
    ids = torch.randint(0, 40, (16 * 20,), generator=torch.Generator().manual_seed(0))
    spec = pretrain.TrainSpec(steps=4, batch_size=3, lr=1e-2, warmup=2, weight_decay=0.1, eval_every=2, eval_windows=2, seed=seed)
    curve = pretrain.train(model, ids, ids[:64], 16, spec, torch.device("cpu"))
    return model, curve


def test_same_seed_same_weights_and_curve():
    (m1, c1), (m2, c2) = run(0), run(0)
    assert c1 == c2 or all(a["train_loss"] == b["train_loss"] for a, b in zip(c1, c2))
    for (n, p), (_, q) in zip(m1.named_parameters(), m2.named_parameters()):
        assert torch.equal(p, q), n
    m3, _ = run(1)
    assert not torch.equal(next(m1.parameters()), next(m3.parameters()))


def test_curve_records_validation_every_eval_step():
    _, curve = run(0)
    assert [r["step"] for r in curve if "val_ppl" in r] == [2, 4]
    assert all(math.isclose(r["val_ppl"], math.exp(r["val_loss"])) for r in curve if "val_ppl" in r)


def test_cosine_schedule_known_values():
    spec = pretrain.TrainSpec(steps=110, batch_size=1, lr=1.0, warmup=10, weight_decay=0, eval_every=1, eval_windows=1, seed=0)
    assert pretrain.cosine_lr(0, spec) == pytest.approx(0.1)
    assert pretrain.cosine_lr(9, spec) == pytest.approx(1.0)
    assert pretrain.cosine_lr(10, spec) == pytest.approx(1.0)
    assert pretrain.cosine_lr(60, spec) == pytest.approx(0.1 + 0.9 * 0.5)
    assert pretrain.cosine_lr(110, spec) == pytest.approx(0.1)


def test_hidden_not_divisible_by_heads_is_refused():
    with pytest.raises(ValueError, match="hidden_size=18 is not divisible by tiny_model.num_heads=4"):
        models.tiny_config({**TM, "hidden_size": 18, "num_heads": 4}, vocab_size=40)


def test_bfloat16_autocast_trains_in_bf16_and_keeps_fp32_weights_and_evaluation():
    """pretrain.autocast: bfloat16 runs the training forward in bf16 (a linear's output dtype,
    recorded by a hook), evaluation in fp32, and the weights stay fp32; the losses are those of
    fp32 training to bf16's precision, not the same bits."""

    def train(autocast):
        torch.manual_seed(0)
        model = LlamaForCausalLM(models.tiny_config(TM, vocab_size=40))
        seen = []
        model.model.layers[0].mlp.down_proj.register_forward_hook(lambda m, i, o: seen.append((m.training, o.dtype)))
        ids = torch.randint(0, 40, (16 * 20,), generator=torch.Generator().manual_seed(0))
        spec = pretrain.TrainSpec(
            steps=4, batch_size=3, lr=1e-2, warmup=2, weight_decay=0.1, eval_every=2, eval_windows=2, seed=0, autocast=autocast
        )
        return model, pretrain.train(model, ids, ids[:64], 16, spec, torch.device("cpu")), seen

    m32, c32, seen32 = train("float32")
    m16, c16, seen16 = train("bfloat16")
    assert {d for training, d in seen16 if training} == {torch.bfloat16}
    assert {d for training, d in seen16 if not training} == {torch.float32}
    assert {d for _, d in seen32} == {torch.float32}
    assert all(p.dtype == torch.float32 for p in m16.parameters())
    l32, l16 = [r["train_loss"] for r in c32], [r["train_loss"] for r in c16]
    assert l32 != l16
    assert l16 == pytest.approx(l32, rel=2e-2)


def test_unknown_autocast_is_refused_before_training():
    spec = pretrain.TrainSpec(steps=1, batch_size=1, lr=1.0, warmup=1, weight_decay=0, eval_every=1, eval_windows=1, seed=0, autocast="fp8")
    with pytest.raises(ValueError, match=r"pretrain.autocast='fp8'; allowed: \['bfloat16', 'float32'\]"):
        pretrain.train(None, torch.arange(64), torch.arange(64), 16, spec, torch.device("cpu"))

"""Knowledge editing (ft, lora, memit) and its metrics."""

import copy

import pytest
import torch
from compose_world import knowing_model, tiny_model, world_setup  # noqa: F401  (shared fixtures)

from compbench.compose import metrics as em
from compbench.compose.interventions.methods import INTERVENTIONS, MCQ, Context

# ------------------------------------------------------------ metrics, known answers


def test_token_f1_and_locality_known_answers():
    assert em.token_f1([1, 2, 3], [1, 2, 3]) == 1.0
    assert em.token_f1([1, 2], [3, 4]) == 0.0
    # common = 2 (tokens 1, 2): precision 2/4, recall 2/2 -> F1 = 2/3
    assert em.token_f1([1, 2, 5, 6], [1, 2]) == pytest.approx(2 / 3)
    assert em.locality([[1, 2], [7]], [[1, 2], [8]]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 predictions before, 1 after"):
        em.locality([[1], [2]], [[1]])


class FixedLogits(torch.nn.Module):
    """A 'model' whose next-token prediction at position t is table[t]."""

    def __init__(self, table, vocab):
        super().__init__()
        self.table, self.vocab = table, vocab

    def forward(self, input_ids, attention_mask=None, **_):
        n, t = input_ids.shape
        logits = torch.zeros(n, t, self.vocab)
        for pos, tok in enumerate(self.table[:t]):
            logits[:, pos, tok] = 1.0
        return type("Out", (), {"logits": logits})()


class Tok:
    pad_token_id = 0

    def __call__(self, text, add_special_tokens=True):
        ids = [int(w) for w in text.split()]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}


def test_token_accuracy_on_controlled_logits():
    # sequence: BOS 5 | target 7 8 9 ; predictions at positions 1, 2, 3 predict tokens 2, 3, 4
    model = FixedLogits([0, 7, 0, 9, 0], vocab=12)
    acc = em.token_accuracy(model, Tok(), ["5"], [" 7 8 9"], "cpu")
    assert acc == [pytest.approx(2 / 3)]  # 7 right, 8 wrong, 9 right
    items = [MCQ("5", ("7 8 9", "7 1 1", "3 3 3"), 0)]
    assert em.mcq_accuracy(model, Tok(), items, "cpu") == 1.0


# ------------------------------------------------------------ the editors


# Settings, and the thresholds: measured on this fixture (edit success / locality:
# ft 1.0 / 0.89, lora 1.0 / 0.54, memit 0.725 / 0.89), each with a margin. Locality
# is scored against the unedited model on facts of other people; LoRA on a
# 64-wide model spills more than the others (it does on the embedded default too).
# MEMIT with config/config.yaml's tiny-world deviations (see docs/compose.md; measured
# here with the reference's subject_last / KL 0.0625: 0.51, i.e. no change, and with
# the reference's λ 15000: 0.51).
SETTINGS = {
    "ft": {"norm_constraint": 0.02, "steps": 60, "lr": 1e-2},
    "lora": {"steps": 40, "lr": 5e-3},
    "memit": {"mom2_weight": 1000.0, "fact_token": "last", "kl_factor": 0.0},
}
MIN_SUCCESS = {"ft": 0.9, "lora": 0.9, "memit": 0.6}
MIN_LOCALITY = {"ft": 0.7, "lora": 0.4, "memit": 0.7}


@pytest.mark.parametrize("method", ["ft", "lora", "memit"])
def test_edit_changes_the_target_and_keeps_locality(world_setup, knowing_model, method):
    _, tok, data, ids = world_setup
    model = knowing_model
    ctx = Context(tok, torch.device("cpu"), data, ids)
    before = em.edit_success(model, tok, data.edits, "cpu")
    pre = em.predictions(model, tok, data.locality, "cpu")
    lp = lambda m: [s[0] for s in em.choice_loglik(m, tok, [MCQ(e.prompt, (e.target_new.strip(),), 0) for e in data.edits], "cpu")]  # noqa: E731
    new_before = lp(model)
    names = [n for n, _ in model.named_parameters()]
    edited = copy.deepcopy(model)
    INTERVENTIONS.get(method)(edited, ctx, **SETTINGS[method])
    after = em.edit_success(edited, tok, data.edits, "cpu")
    # (before: ~0.5, since the targets' leading-space token is predicted anyway with this 400-token vocabulary)
    assert after >= MIN_SUCCESS[method] and after >= before + 0.2, (before, after)
    # every new value became far more likely (values may share tokens with the old ones, so
    # "old tokens vanish" is not the test)
    assert all(a > b + 2.0 for a, b in zip(lp(edited), new_before)), (lp(edited), new_before)
    assert em.locality(pre, em.predictions(edited, tok, data.locality, "cpu")) >= MIN_LOCALITY[method]
    # the edited model is a plain model of the same architecture (LoRA merged back)
    assert [n for n, _ in edited.named_parameters()] == names


def test_ft_only_touches_its_band_and_respects_the_norm_constraint(world_setup):
    _, tok, data, ids = world_setup
    model = tiny_model(seed=2)
    edited = copy.deepcopy(model)
    INTERVENTIONS.get("ft")(edited, Context(tok, torch.device("cpu"), data, ids), layers=[1], norm_constraint=1e-3, steps=5)
    for (n, a), (_, b) in zip(model.named_parameters(), edited.named_parameters()):
        if n == "model.layers.1.mlp.down_proj.weight":
            assert 0 < (a - b).abs().max() <= 1e-3 + 1e-7
        else:
            assert torch.equal(a, b), n
    with pytest.raises(ValueError, match=r"edit layers \[5\]: \[5\] out of range; allowed: 0..1"):
        INTERVENTIONS.get("ft")(edited, Context(tok, torch.device("cpu"), data, ids), layers=[5])


def test_memit_statistics_are_computed_once_and_cached(world_setup, tmp_path, monkeypatch):
    from compbench.compose.interventions import edit_memit

    _, tok, data, ids = world_setup
    calls = []
    real = edit_memit.key_covariance
    monkeypatch.setattr(edit_memit, "key_covariance", lambda *a, **k: calls.append(1) or real(*a, **k))
    ctx = Context(tok, torch.device("cpu"), data, ids, cache_dir=tmp_path)
    m1 = tiny_model(seed=3)
    INTERVENTIONS.get("memit")(m1, ctx, layers=[0, 1], v_steps=2)
    files = list(tmp_path.glob("memit-cov-*.safetensors"))
    assert len(calls) == 1 and len(files) == 1
    C = edit_memit.cached_covariance(tiny_model(seed=3), ctx, [0, 1], 32)
    assert len(calls) == 1  # read from the cache, not recomputed
    direct = edit_memit.key_covariance(tiny_model(seed=3), ids, [0, 1], "cpu")
    assert torch.allclose(C[0], direct[0], atol=1e-6)
    assert torch.allclose(C[0], C[0].T) and torch.linalg.eigvalsh(C[0].double()).min() > -1e-6

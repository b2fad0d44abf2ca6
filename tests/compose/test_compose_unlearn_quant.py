"""Unlearning (ga, gd, rmu) and weight quantisation (RTN, GPTQ, AWQ)."""

import copy

import pytest
import torch
from compose_world import knowing_model, tiny_model, world_setup  # noqa: F401  (shared fixtures)

from compbench.compose import quantize as Q
from compbench.compose.interventions.awq import awq_matrix
from compbench.compose.interventions.gptq import gptq_matrix
from compbench.compose.interventions.methods import INTERVENTIONS, Context
from compbench.compose.interventions.unlearn_common import mean_nll

# ------------------------------------------------------------ quantisation


def test_rtn_known_answer():
    # row [-1, 0, 0.5, 2] at 2 bits: range [-1, 2], scale 3/3 = 1, zero = round(1/1) = 1
    W = torch.tensor([[-1.0, 0.0, 0.5, 2.0]])
    scale, zero = Q.params(W, 2)
    assert float(scale) == 1.0 and float(zero) == 1.0
    # q = clamp(round(x) + 1, 0, 3) -> [0, 1, 1 (0.5 rounds to even 0), 3]; x̂ = q - 1
    assert Q.rtn(W, 2, 4).tolist() == [[-1.0, 0.0, 0.0, 2.0]]
    with pytest.raises(ValueError, match="bits=9; allowed: 2..8"):
        Q.params(W, 9)
    with pytest.raises(ValueError, match="group_size=0"):
        Q.rtn(W, 4, 0)


def literal_gptq(W, H, bits, group_size):
    """Algorithm 1 of the paper, column by column, no blocks, no lazy updates,
    with the quantiser's group parameters taken from the weights as they are when
    a group starts, excluding the pending updates of the current 128-block (as the
    reference does)."""
    from compbench.prune.sparsegpt import inverse_cholesky

    W = W.clone().float()
    U = inverse_cholesky(H, W)
    rows, cols = W.shape
    out = torch.zeros_like(W)
    W_lazy = W.clone()  # the weights with updates applied only at 128-block boundaries
    for q in range(cols):
        if q % 128 == 0:
            W_lazy = W.clone()
        if q % group_size == 0:
            scale, zero = Q.params(W_lazy[:, q : q + group_size], bits)
        w = W[:, q].clone()
        qq = Q.fake_quant(w.unsqueeze(1), scale, zero, bits).squeeze(1)
        out[:, q] = qq
        err = (w - qq) / U[q, q]
        for j in range(q, cols):
            W[:, j] -= err * U[q, j]
    return out


def correlated(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 4, generator=g)
    return base @ torch.randn(4, d, generator=g) + 0.1 * torch.randn(n, d, generator=g)


@pytest.mark.parametrize("group_size", [16, 48, 200])
def test_gptq_equals_the_literal_algorithm(group_size):
    torch.manual_seed(0)
    W = torch.randn(8, 200)
    X = correlated(512, 200, 1)
    H = 2 / X.shape[0] * X.T @ X
    fast = gptq_matrix(W, H, 3, group_size)
    slow = literal_gptq(W, H, 3, group_size)
    assert torch.allclose(fast, slow, atol=1e-4)
    # every row-group holds at most 2^bits distinct values
    for c in range(0, 200, group_size):
        for r in range(8):
            assert fast[r, c : c + group_size].unique().numel() <= 2**3


def test_gptq_known_answers_and_beats_rtn_on_correlated_inputs():
    torch.manual_seed(1)
    W = torch.randn(16, 64)
    # identity Hessian (uncorrelated, equal-power inputs): no error to compensate, GPTQ = RTN
    assert torch.allclose(gptq_matrix(W, torch.eye(64), 4, 32), Q.rtn(W, 4, 32), atol=1e-5)
    X = correlated(1024, 64, 2)
    H = 2 / X.shape[0] * X.T @ X
    err = lambda Wq: float(((X @ (Wq - W).T) ** 2).sum())  # noqa: E731
    assert err(gptq_matrix(W, H, 3, 64)) < err(Q.rtn(W, 3, 64))
    assert err(gptq_matrix(W, H, 8, 64)) < 1e-3 * float(((X @ W.T) ** 2).sum())


def test_awq_search_contains_rtn_and_never_loses_to_it():
    torch.manual_seed(3)
    W = torch.randn(16, 64)
    X = correlated(512, 64, 4) * torch.linspace(0.1, 5, 64)  # a few salient input channels
    err = lambda Wq: float(((X @ (Wq - W).T) ** 2).sum())  # noqa: E731
    Wq1, alpha1 = awq_matrix(W, X, 3, 32, grid=1)  # grid of one point: alpha = 0, plain RTN
    assert alpha1 == 0.0 and torch.allclose(Wq1, Q.rtn(W, 3, 32), atol=1e-6)
    Wq, alpha = awq_matrix(W, X, 3, 32, grid=20)
    assert err(Wq) <= err(Q.rtn(W, 3, 32)) + 1e-6


def test_gptq_intervention_on_a_model(world_setup):
    _, tok, data, ids = world_setup
    model = tiny_model(seed=4)
    info = INTERVENTIONS.get("gptq")(model, Context(tok, torch.device("cpu"), data, ids), bits=4, group_size=32)
    assert info["avg_bits"] == 4 + 32 / 32
    W = model.model.layers[0].mlp.down_proj.weight
    assert all(W[r, c : c + 32].unique().numel() <= 16 for r in range(W.shape[0]) for c in range(0, W.shape[1], 32))


# ------------------------------------------------------------ unlearning


@pytest.mark.parametrize("method", ["ga", "gd"])
def test_ascent_raises_the_forget_loss(world_setup, knowing_model, method):
    _, tok, data, ids = world_setup
    model = copy.deepcopy(knowing_model)
    f0 = mean_nll(model, tok, data.forget_texts, "cpu")
    r0 = mean_nll(model, tok, data.retain_texts, "cpu")
    info = INTERVENTIONS.get(method)(model, Context(tok, torch.device("cpu"), data, ids), steps=10, lr=1e-3, max_loss=None)
    f1 = mean_nll(model, tok, data.forget_texts, "cpu")
    assert f1 > f0 + 1.0, (f0, f1)
    assert info["forget_nll_after"] == pytest.approx(f1)
    if method == "gd":  # the retain term holds the retain loss near where it was (measured +0.2 here)
        r1 = mean_nll(model, tok, data.retain_texts, "cpu")
        assert r1 - r0 < 0.5 * (f1 - f0), (r0, r1, f0, f1)


# RMU: tests/compose/test_compose_reference.py (against WMDP's reference)

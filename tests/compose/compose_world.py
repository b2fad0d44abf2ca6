"""Shared by the compose tests (test_compose*.py): the tiny model at the compose
line's sizes, the small knowledge world, and a tiny model pretrained on it."""

from functools import partial

import pytest
import torch

from compbench.compose import data as compose_data
from compbench.compose.interventions.methods import StudyData
from compbench.knowledge import World
from conftest import make_tiny_llama

# 2 blocks of width 64 over the world tokenizer's 400 tokens; tiny_model(seed=...)
tiny_model = partial(make_tiny_llama, vocab=400, hidden=64, inter=128, layers=2, heads=4, positions=64)


@pytest.fixture(scope="module")
def world_setup():
    from compbench.tokenizer import train

    world = World(n_people=12, n_agents=4, seed=0)
    docs = world.corpus_documents(0.5, 20_000)
    tok = train(docs, vocab_size=400)
    d = compose_data.world_study(world, n_edits=4, n_locality=3)
    data = StudyData(
        edits=d["edits"],
        locality=d["locality"],
        forget_texts=d["forget_texts"],
        retain_texts=docs[:20],
        forget_mcq=d["forget_mcq"],
        utility_mcq=d["utility_mcq"],
    )
    stream = torch.tensor(tok("\n\n".join(docs))["input_ids"])
    ids = stream[: 8 * 32].view(8, 32)
    return world, tok, data, ids


@pytest.fixture(scope="module")
def knowing_model(world_setup):
    """A tiny model pretrained (150 steps, ~2 s) on the small world, so that it knows
    its facts (measured: 80 % of the general-knowledge questions, chance 25 %)."""
    from compbench import pretrain

    _, tok, data, _ = world_setup
    world = world_setup[0]
    stream = torch.tensor(tok("\n\n".join(world.corpus_documents(0.5, 20_000)))["input_ids"])
    model = tiny_model(seed=0)
    spec = pretrain.TrainSpec(steps=150, batch_size=16, lr=3e-3, warmup=20, weight_decay=0.0, eval_every=1000, eval_windows=2, seed=0)
    pretrain.train(model, stream, stream, 64, spec, torch.device("cpu"))
    return model.eval()

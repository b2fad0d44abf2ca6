"""Atomic artifact writes and corrupt-artifact detection."""

import pandas as pd
import pytest
import torch

from compbench import artifacts


def test_failed_write_leaves_previous_file_and_no_temp(tmp_path):
    target = tmp_path / "t.csv"
    artifacts.write_table(target, pd.DataFrame({"a": [1]}))
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with artifacts.atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_directory_replaced_atomically(tmp_path):
    target = tmp_path / "model"
    with artifacts.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("1")
    with artifacts.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]


def test_tensors_round_trip_and_corruption_is_named(tmp_path):
    path = tmp_path / "w.safetensors"
    t = {"w": torch.randn(3, 4), "m": torch.arange(5, dtype=torch.uint8)}
    artifacts.save_tensors(path, t, {"k": 1})
    back = artifacts.load_tensors(path)
    assert all(torch.equal(t[k], back[k]) for k in t)
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.raises(artifacts.CorruptArtifact, match="w.safetensors"):
        artifacts.load_tensors(path)


def test_corrupt_table_and_json_are_named(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(artifacts.CorruptArtifact, match="x.json"):
        artifacts.read_json(tmp_path / "x.json")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(artifacts.CorruptArtifact, match="e.csv"):
        artifacts.read_table(tmp_path / "e.csv")

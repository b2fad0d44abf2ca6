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
    assert sorted(p.name for p in tmp_path.iterdir()) == [".t.csv.compbench-artifact.json", "t.csv"]  # the file and its record
    artifacts.read_table(target)  # still matches its record


def test_directory_replaced_atomically(tmp_path):
    target = tmp_path / "model"
    with artifacts.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("1")
    with artifacts.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [artifacts.RECORD, "b"]
    assert list(artifacts.read_json(target / artifacts.RECORD)["files"]) == ["b"]


def test_the_same_tensors_and_metadata_give_the_same_bytes(tmp_path):
    """safetensors writes metadata in a Rust HashMap's order, different from one save to the
    next (found in two runs of one fusion_router job); save_tensors sorts it, so a rerun that
    computes the same thing writes the same file and its checksum does not change."""
    t = {"b": torch.randn(3, 4), "a": torch.arange(5, dtype=torch.uint8)}
    meta = {f"key{i}": f"värde {i}" for i in range(6)}  # 720 orders; non-ASCII kept as written
    files = []
    for i in range(8):
        artifacts.save_tensors(tmp_path / f"{i}.safetensors", t, meta)
        files.append((tmp_path / f"{i}.safetensors").read_bytes())
    assert all(f == files[0] for f in files)
    back, got = artifacts.load_tensors(tmp_path / "0.safetensors", metadata=True)
    assert got == meta and all(torch.equal(t[k], back[k]) for k in t)


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


# --- provenance records (checksums) and file modes (issue 20) ---------------------------


def test_every_artifact_has_a_record_that_catches_truncation_and_same_size_overwrite(tmp_path):
    import os

    artifacts.save_tensors(tmp_path / "w.safetensors", {"w": torch.randn(8, 8)})
    artifacts.write_table(tmp_path / "t.csv", pd.DataFrame({"a": range(20)}))
    with artifacts.atomic_path(tmp_path / "model") as tmp:
        tmp.mkdir()
        artifacts.save_tensors(tmp / "model.safetensors", {"w": torch.randn(16, 16)})
        artifacts.write_json(tmp / "config.json", {"hidden": 16})
    assert artifacts.verify_tree(tmp_path) == {}
    # a file inside a directory artifact has no record of its own: the directory's covers it
    assert not (tmp_path / "model" / ".model.safetensors.compbench-artifact.json").exists()
    rec = artifacts.read_json(tmp_path / "model" / artifacts.RECORD)["files"]
    assert rec["model.safetensors"]["sha256"] == artifacts.sha256(tmp_path / "model" / "model.safetensors")
    # truncated inside the directory: named by the tree check, refused on load
    w = tmp_path / "model" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    assert list(artifacts.verify_tree(tmp_path)) == [tmp_path / "model"]
    with pytest.raises(artifacts.CorruptArtifact, match="model.safetensors: 100 bytes, recorded"):
        artifacts.load_tensors(w)
    # same size, other content (one flipped byte): only the checksum sees it
    t = tmp_path / "t.csv"
    data = bytearray(t.read_bytes())
    data[5] ^= 1
    t.write_bytes(bytes(data))
    os.utime(t, None)
    with pytest.raises(artifacts.CorruptArtifact, match="t.csv: content differs from its record"):
        artifacts.read_table(t)
    assert set(artifacts.verify_tree(tmp_path)) == {tmp_path / "model", t}
    # a file artifact gone as a whole (an interrupted job's output, removed by Snakemake) is no
    # damage: Snakemake sees it missing and rebuilds it; its record stays
    t.unlink()
    assert set(artifacts.verify_tree(tmp_path)) == {tmp_path / "model"}
    assert (tmp_path / f".t.csv{artifacts.RECORD}").exists()


def test_a_rewrite_replaces_the_record(tmp_path):
    path = tmp_path / "t.csv"
    artifacts.write_table(path, pd.DataFrame({"a": [1]}))
    artifacts.write_table(path, pd.DataFrame({"a": [1, 2, 3]}))
    assert artifacts.read_table(path)["a"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
def test_outputs_get_the_process_umask_mode(tmp_path, mask):
    """safetensors' save_file (and tempfile) create 0600; artifacts get 0666/0777 minus the umask."""
    import os
    import stat

    old = os.umask(mask)
    try:
        artifacts.save_tensors(tmp_path / "w.safetensors", {"w": torch.ones(2)})
        with artifacts.atomic_path(tmp_path / "m") as tmp:
            tmp.mkdir()
            artifacts.save_tensors(tmp / "model.safetensors", {"w": torch.ones(2)})
    finally:
        os.umask(old)
    for p, full in [(tmp_path / "w.safetensors", 0o666), (tmp_path / "m", 0o777), (tmp_path / "m" / "model.safetensors", 0o666)]:
        p_mode = stat.S_IMODE(p.stat().st_mode)
        assert p_mode == full & ~mask, (p, oct(p_mode))
    assert stat.S_IMODE((tmp_path / "m" / artifacts.RECORD).stat().st_mode) == 0o666 & ~mask

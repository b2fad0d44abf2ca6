"""End to end: Snakemake on the smoke config in a temporary copy of the workflow."""
import os
import re
import time

import pandas as pd
import pytest
import yaml

from conftest import copy_repo, snakemake

pytestmark = pytest.mark.workflow


def planned(workdir, *args):
    """Rule -> job count that `snakemake -n` would run."""
    out = snakemake(workdir, "-n", "--configfile", "config/smoke.yaml", *args).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    wd = copy_repo(tmp_path_factory.mktemp("wf"))
    everything = planned(wd)
    snakemake(wd, "--configfile", "config/smoke.yaml")
    return wd, everything


def test_outputs_and_tidy_table(done):
    wd, _ = done
    table = pd.read_csv(wd / "results/tables/perplexity.csv")
    dense = table[(table.variant == "dense") & (table.metric == "perplexity")]
    assert len(dense) == 1 and 1 < dense.value.iloc[0] < 512  # better than uniform over the smoke vocab
    for col in ("model", "variant", "dataset", "metric", "value", "seed", "config", "versions", "device", "wall_s", "peak_rss_mb"):
        assert col in table.columns, col
    curve = pd.read_csv(wd / "results/pretrain/tiny/curve.csv")
    val = curve.dropna(subset=["val_loss"])
    assert val.val_loss.iloc[-1] < val.val_loss.iloc[0]  # it learned
    assert (wd / "results/figures/pretrain-tiny.png").stat().st_size > 1000
    assert (wd / "results/models/tiny/model.safetensors").exists()


def test_noop_rerun_is_nothing_and_fast(done):
    wd, _ = done
    t0 = time.perf_counter()
    assert planned(wd) == {}
    assert time.perf_counter() - t0 < 30


def test_config_change_reruns_exactly_dependents(done, tmp_path):
    wd, everything = done
    cfg = yaml.safe_load((wd / "config/smoke.yaml").read_text())
    cfg["pretrain"]["lr"] = cfg["pretrain"]["lr"] / 2
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned(wd, "--configfile", str(tmp_path / "c.yaml"))
    # Everything downstream of the model reruns; the corpus and the tokenizer do not.
    assert set(jobs) == set(everything) - {"corpus", "tokenizer"}
    assert jobs["pretrain_tiny"] == 1


def test_module_change_reruns_only_its_users(done):
    wd, everything = done
    module = wd / "workflow/compbench/perplexity.py"
    source = module.read_text()
    # Snakemake 9 compares input checksums: a touch is not a change, an edit is.
    module.write_text(source + "\n# an edit\n")
    try:
        jobs = planned(wd)
    finally:
        module.write_text(source)
    assert jobs.get("perplexity") == everything["perplexity"]
    assert not {"corpus", "tokenizer", "pretrain_tiny"} & set(jobs)


def test_report_contains_curve_and_table(done):
    wd, _ = done
    snakemake(wd, "--configfile", "config/smoke.yaml", "--report", "report.html")
    html = (wd / "report.html").read_text(errors="replace")
    assert "pretrain-tiny.png" in html and "perplexity.csv" in html

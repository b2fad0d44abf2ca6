"""End to end: Snakemake on the smoke config in a temporary copy of the workflow."""

import io
import math
import re
import time

import pandas as pd
import pytest
import yaml

from conftest import ROOT, copy_repo, planned_jobs, snakemake

pytestmark = pytest.mark.workflow


def descendants(workdir, rule):
    """Rules of every job downstream of (and including) `rule`'s jobs, read
    from the DAG that `snakemake --dag` prints, up-to-date jobs included."""
    dot = snakemake(workdir, "--dag", "--configfile", "config/smoke.yaml", "-F").stdout
    label = {m.group(1): m.group(2) for m in re.finditer(r'^\s*(\d+)\[label = "([\w]+)', dot, re.M)}
    edges = [(a, b) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)]
    reached = {n for n, r in label.items() if r == rule}
    grew = True
    while grew:
        new = {b for a, b in edges if a in reached} - reached
        reached |= new
        grew = bool(new)
    return {label[n] for n in reached}


@pytest.fixture(scope="module")
def done(smoke):
    return smoke.workdir, smoke.planned


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


def test_verdicts_bootstrap_the_evaluations_items(done):
    """The smoke run's verdicts: every testable perplexity, zero-shot and edit-success claim has an
    interval from a paired bootstrap over its evaluation's windows / items / facts (issue 22);
    compose's order sensitivity a sign-flip permutation test over the facts; the claims that cannot
    have one (spectra's α, memtrain's bytes) have none."""
    wd, _ = done
    v = pd.read_csv(wd / "results/tables/verdicts.csv").set_index("id")
    testable = v[v.verdict != "not testable here"]
    line = testable["line"]
    for ln in ("pruning", "lowrank", "quant", "tradeoff"):
        rows = testable[line == ln]
        assert len(rows) and rows.interval_method.str.fullmatch(r"bootstrap over \d+ windows \(2000 resamples\)").all(), (
            ln,
            rows.interval_method,
        )
    assert testable.loc["compose/compression-hurts-editing/tiny", "interval_method"].startswith("bootstrap over 4 edited facts")
    # the smoke study has one calibration source (its claims are not testable): the items are there for them
    items = pd.read_csv(wd / "results/eval/tiny/lm_eval_items-dense.csv")
    zs = pd.read_csv(wd / "results/eval/tiny/lm_eval-dense.csv").set_index(["dataset", "metric"])
    for r in items.itertuples():
        assert len(r.correct) == r.n + 1 and r.correct.count("1") / r.n == pytest.approx(zs.loc[(r.dataset, r.metric), "value"])
    assert re.fullmatch(
        r"sign-flip permutation over 4 facts × \d+ pairs? \(2000 draws\), p = [0-9.e-]+",
        testable.loc["compose/order-matters/tiny", "interval_method"],
    )
    for cid in ("spectra/heavy-tailed/tiny", "memtrain/qgalore-less-memory"):
        assert v.loc[cid, "noise"] in ("one run, no interval", "–"), cid


def test_tradeoff_plane_and_quant_variants(done):
    """Every compressed variant of the smoke run on one plane, each with its stored bytes
    (known answers for the quantised ones), perplexity, zero-shot accuracy and front flag."""
    import numpy as np

    from compbench.tradeoff import pareto

    wd, _ = done
    t = pd.read_csv(wd / "results/tables/tradeoff-tiny.csv")
    cols = {
        "model",
        "variant",
        "line",
        "method",
        "format",
        "bytes",
        "params",
        "bits_per_weight",
        "perplexity_tiny",
        "zeroshot_acc",
        "on_front",
    }
    assert cols <= set(t.columns) and len(t) == 17 and t.variant.is_unique
    assert set(t.line) == {"dense", "pruning", "calibration_study", "lowrank", "quant"}
    assert np.isfinite(t.perplexity_tiny).all() and t.zeroshot_acc.between(0, 1).all()
    bpw = t.set_index("variant").bits_per_weight
    # 4-bit codes + 32 bits per group of 16 = 6 bits; pruned 2:4 first: 2:4 of (4-bit code + 2-bit index) + 2 = 5
    assert bpw["dense"] == 16 and bpw["quant-rtn-w4g16"] == bpw["quant-gptq-w4g16"] == 6
    assert bpw["quant-gptq-w4g16-on-prune-sparsegpt-2of4"] == 5 and bpw["prune-sparsegpt-2of4"] == 9
    assert t.on_front.tolist() == pareto.front(t.bytes, t.perplexity_tiny).tolist() and t.on_front.any()
    assert t.set_index("variant").method["quant-gptq-w4g16-on-prune-sparsegpt-2of4"] == "sparsegpt+gptq"
    q = pd.read_csv(wd / "results/tables/quant-tiny.csv")
    assert {"dense", "quant-rtn-w4g16", "quant-gptq-w4g16", "quant-gptq-w4g16-on-prune-sparsegpt-2of4"} == set(q.variant)
    assert q.set_index("variant").bits_per_weight.to_dict() == {v: bpw[v] for v in q.variant}  # one storage format for both tables
    assert (wd / "results/figures/tradeoff-tiny.png").stat().st_size > 1000


def test_noop_rerun_is_nothing_and_fast(done):
    wd, _ = done
    t0 = time.perf_counter()
    assert planned_jobs(wd) == {}
    assert time.perf_counter() - t0 < 30


def test_a_moved_run_folder_plans_nothing(done, tmp_path):
    """The sources and results copied elsewhere (mtimes kept, as rsync -a or cp -a do):
    nothing to rerun. Code inputs were absolute paths once, and a copied run reran
    everything ("Set of input files has changed")."""
    import shutil

    wd, _ = done
    moved = tmp_path / "moved"
    shutil.copytree(wd, moved, symlinks=True)
    assert planned_jobs(moved) == {}


def test_config_change_reruns_exactly_dependents(done, tmp_path):
    wd, everything = done
    cfg = yaml.safe_load((wd / "config/smoke.yaml").read_text())
    cfg["pretrain"]["lr"] = cfg["pretrain"]["lr"] / 2
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(wd, "--configfile", str(tmp_path / "c.yaml"))
    # Exactly the jobs downstream of the model rerun; the corpus and the tokenizer do not.
    assert set(jobs) == descendants(wd, "pretrain_tiny")
    assert not {"corpus", "tokenizer"} & set(jobs)
    assert jobs["pretrain_tiny"] == 1


def test_module_change_reruns_only_its_users(done):
    wd, everything = done
    module = wd / "workflow/compbench/perplexity.py"
    source = module.read_text()
    # Snakemake 9 compares input checksums: a touch is not a change, an edit is.
    module.write_text(source + "\n# an edit\n")
    try:
        jobs = planned_jobs(wd)
    finally:
        module.write_text(source)
    assert jobs.get("perplexity") == everything["perplexity"]
    assert not {"corpus", "tokenizer", "pretrain_tiny"} & set(jobs)


def test_adding_a_seed_runs_only_that_seeds_jobs(done, tmp_path):
    """A second seed for speech, PASS and fusion plans exactly one more training job per run of
    those lines (and their tables, figures and verdicts): no corpus, features, images, tasks or
    model is made again, and no job of seed 0 reruns (issue 22)."""
    from compbench.config import validate
    from compbench.speech import grid as speech_grid

    wd, _ = done
    cfg = yaml.safe_load((wd / "config/smoke.yaml").read_text())
    cfg["speech"]["seeds"] = cfg["vision"]["pass"]["seeds"] = cfg["vision"]["fusion"]["seeds"] = [0, 1]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(wd, "--configfile", str(tmp_path / "c.yaml"))
    validate(cfg, ROOT / "config" / "schema.yaml")
    p = cfg["vision"]["pass"]
    assert jobs["speech_train"] == len(speech_grid.runs(cfg["speech"]))
    assert (jobs["pass_dense"], jobs["pass_prune"]) == (1, len(p["methods"]) * len(p["flops_targets"]))
    assert (jobs["fusion_finetune"], jobs["fusion_router"], jobs["fusion_evaluate"]) == (len(cfg["vision"]["fusion"]["tasks"]), 1, 1)
    summaries = {"speech_table", "figure_speech", "pass_table", "figure_pass", "fusion_summary", "verdicts", "table_html", "all"}
    assert set(jobs) - summaries == {"speech_train", "pass_dense", "pass_prune", "fusion_finetune", "fusion_router", "fusion_evaluate"}


def test_report_contains_curve_and_table(done):
    wd, _ = done
    snakemake(wd, "--configfile", "config/smoke.yaml", "--report", "report.html")
    html = (wd / "report.html").read_text(errors="replace")
    assert "pretrain-tiny.png" in html and "perplexity.csv" in html


PAPER_CONFIGS = sorted(p.name for p in (ROOT / "config").glob("paper_*.yaml"))


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_config_plans_offline(name, tmp_path):
    """Every paper-scale config validates and builds its DAG here, without the hub,
    and replaces the embedded default (no tiny model sneaks into a paper run)."""
    wd = copy_repo(tmp_path)
    out = snakemake(wd, "-n", "--configfile", f"config/{name}").stdout
    cfg = yaml.safe_load((wd / "config" / name).read_text())
    jobs = out.split("Job stats:", 1)[1].split("total", 1)[0]
    if not any(spec["source"] == "tiny" for spec in cfg["models"].values()):
        assert "pretrain_tiny" not in jobs
    for model, spec in cfg["models"].items():
        if spec["source"] == "hf":
            assert f"results/models/{model}" in out


def test_memtrain_pretrain_overlay_plans_every_size_and_variant(tmp_path):
    """config/memtrain-pretrain.yaml on top of the default validates and adds one
    pre-training job per size x variant, leaving the fine-tuning settings alone."""
    wd = copy_repo(tmp_path)
    jobs = planned_jobs(wd, "--configfile", "config/config.yaml", "config/memtrain-pretrain.yaml")
    overlay = yaml.safe_load((wd / "config" / "memtrain-pretrain.yaml").read_text())["memtrain"]
    default = yaml.safe_load((wd / "config" / "config.yaml").read_text())["memtrain"]
    assert "pretrain" not in default
    n = len(overlay["pretrain"]["sizes"]) * len(overlay["pretrain"].get("variants") or default["variants"])
    assert jobs["memtrain_pretrain"] == n


def test_tiny_full_overlay_adds_the_full_grid_and_keeps_the_defaults_jobs(tmp_path):
    """config/tiny-full.yaml on top of the default: every cross-category composability pair of the union
    of interventions and lm-eval on every trade-off variant; the default's own runs keep their settings,
    so their results are reused (each run's params are the interventions it applies)."""
    from compbench.compose import grid

    wd = copy_repo(tmp_path)

    def merged(*files):  # as Snakemake merges several --configfile
        from snakemake.utils import update_config

        cfg = {}
        for f in files:
            update_config(cfg, yaml.safe_load((wd / "config" / f).read_text()))
        return cfg

    default, full = merged("config.yaml"), merged("config.yaml", "tiny-full.yaml")
    assert set(default["compose"]["interventions"]) < set(full["compose"]["interventions"])
    assert set(grid.runs(default)) < set(grid.runs(full))
    for run in grid.runs(default):
        assert grid.run_interventions(default, run) == grid.run_interventions(full, run), run
    kinds = grid.categories(full)
    crossed = [p for p in grid.pairs(full) if "-s0." not in p]
    assert len(crossed) == sum(1 for a in kinds for b in kinds if a < b and kinds[a] != kinds[b])
    jobs_default = planned_jobs(wd, "--configfile", "config/config.yaml")
    jobs_full = planned_jobs(wd, "--configfile", "config/config.yaml", "config/tiny-full.yaml")
    assert jobs_full["compose_run"] - jobs_default["compose_run"] == len(grid.runs(full)) - len(grid.runs(default))
    assert jobs_full["lm_eval"] > jobs_default["lm_eval"]


# The lints we accept, and why (README, "The spine"): one pinned environment
# instead of per-rule conda envs; the Snakefile sets PYTHONPATH, reads nothing from it.
ACCEPTED_LINTS = {
    "Specify a conda environment or container for each rule.",
    "Environment variable PYTHONPATH used but not asserted with envvars directive in line",
    # set by the Snakefile for the report's front page (the config files' names), never required from the user
    "Environment variable COMPBENCH_CONFIGFILES used but not asserted with envvars directive in line",
}


def test_lint_raises_only_accepted_lints(tmp_path):
    wd = copy_repo(tmp_path)
    proc = snakemake(wd, "--lint", check=False)
    titles = {re.sub(r" \d+\.:$", "", t).rstrip(":") for t in re.findall(r"^    \* (.+)$", proc.stdout + proc.stderr, re.M)}
    assert titles, "the linter printed nothing: did it run?\n" + proc.stderr[-2000:]
    assert titles <= ACCEPTED_LINTS, titles - ACCEPTED_LINTS


def smoke_config(wd):
    from compbench.config import prepare

    cfg = yaml.safe_load((wd / "config/smoke.yaml").read_text())
    return prepare(cfg, ROOT / "config" / "schema.yaml")


def test_batched_perplexity_equals_one_variant_at_a_time(done, monkeypatch):
    """Rule perplexity evaluates a batch of variants per job (compbench.lines.perplexity_batches);
    for every variant of the smoke run, the table holds exactly the numbers of that variant
    evaluated alone, fresh, the way the per-variant job computed them."""
    import torch

    from compbench import lines, perplexity_batch

    wd, _ = done
    cfg = smoke_config(wd)
    table = pd.read_csv(wd / "results/tables/perplexity.csv")
    windows = pd.concat([pd.read_csv(wd / p) for p in lines.perplexity_outputs(cfg, "tiny", what="windows")], ignore_index=True)
    monkeypatch.chdir(wd)  # a variant names its base model relative to the run directory
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg["resources"]["tiny"]["threads"])  # as the job ran
    try:
        for name, path in lines.variants(cfg, "tiny").items():
            rows, alone = perplexity_batch.variant_rows(
                path,
                "tiny",
                cfg["models"]["tiny"],
                lines.evaluation_settings(cfg, "tiny"),
                cfg["corpus"]["sources"],
                "results/corpus",
                "cpu",
            )
            for r in rows:
                got = table[(table.variant == name) & (table.metric == r["metric"]) & (table.dataset == "tiny")]
                assert got.value.tolist() == [r["value"]] and got.tokens.tolist() == [r["tokens"]], (name, r["metric"])
            # its windows (the verdicts' bootstrap): the same sums, and they give the table's perplexity exactly
            w = windows[(windows.variant == name) & (windows.dataset == "tiny")].sort_values("window")
            assert w.nll.tolist() == alone["nll"] and w.tokens.tolist() == alone["tokens"], name
            ppl = table[(table.variant == name) & (table.metric == "perplexity") & (table.dataset == "tiny")].value.item()
            assert math.exp(math.fsum(w.nll) / w.tokens.sum()) == ppl, name
    finally:
        torch.set_num_threads(threads)
    assert len(table[table.metric == "perplexity"]) == len(lines.variants(cfg, "tiny"))


def test_a_changed_variant_is_recomputed_an_unchanged_one_is_not(done, tmp_path):
    """The unit of rerun is a batch job; inside it, the result cache evaluates only the
    variants whose content, settings or code changed. A LoRA rank change re-makes
    train-lora only: the memtrain batch reruns, evaluates train-lora and reads train-qgalore
    back. Back to the smoke config, train-lora is re-made as it was and read back too, the
    table is byte for byte the first run's, and nothing is left to do."""
    wd, _ = done
    table = wd / "results/eval/tiny/perplexity-memtrain-tiny.csv"
    windows = wd / "results/eval/tiny/windows-memtrain-tiny.csv"
    log = wd / "results/logs/perplexity/tiny/memtrain-tiny.log"
    first, first_windows = table.read_bytes(), windows.read_bytes()
    cfg = yaml.safe_load((wd / "config/smoke.yaml").read_text())
    cfg["memtrain"]["hyper"]["lora"]["rank"] = 8
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    target = str(table.relative_to(wd))
    jobs = planned_jobs(wd, "--configfile", str(tmp_path / "c.yaml"), targets=[target])
    assert jobs == {"memtrain_finetune": 1, "perplexity": 1}, jobs
    try:
        snakemake(wd, target, "--configfile", str(tmp_path / "c.yaml"))
        text = log.read_text()
        assert "tiny/train-lora on tiny: evaluated" in text and "tiny/train-qgalore on tiny: from cache" in text, text
        old = pd.read_csv(io.BytesIO(first)).set_index(["variant", "metric"])
        new = pd.read_csv(table).set_index(["variant", "metric"])
        assert new.loc[("train-qgalore", "perplexity")].equals(old.loc[("train-qgalore", "perplexity")])  # timings too
        assert new.loc[("train-lora", "perplexity"), "value"] != old.loc[("train-lora", "perplexity"), "value"]
        old_w, new_w = (pd.read_csv(x).set_index(["variant", "window"]) for x in (io.BytesIO(first_windows), windows))
        assert new_w.loc["train-qgalore"].equals(old_w.loc["train-qgalore"])  # a cached row restores its windows
        assert not new_w.loc["train-lora"].equals(old_w.loc["train-lora"])
    finally:
        snakemake(wd, "--configfile", "config/smoke.yaml")
    text = log.read_text()
    assert "tiny/train-lora on tiny: from cache" in text and "tiny/train-qgalore on tiny: from cache" in text, text
    # the same rows and values as the first run's table (its column order may differ when rows come from the
    # cache: compared by name, issue 18 follow-up)
    a = pd.read_csv(io.BytesIO(first), float_precision="round_trip")
    b = pd.read_csv(table, float_precision="round_trip")
    assert sorted(a.columns) == sorted(b.columns)
    pd.testing.assert_frame_equal(a[sorted(a.columns)], b[sorted(a.columns)])
    assert windows.read_bytes() == first_windows  # the windows of both variants come back from the cache, byte for byte
    assert planned_jobs(wd) == {}

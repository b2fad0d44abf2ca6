"""Reliability round 2 (issue 20): no result lost, reruns only for what a job reads.

- kill -9 of a run, then `workflow/run.sh main` finishes without a manual --unlock;
- a truncated artifact inside a directory output (invisible to `snakemake -n`) is named
  by `workflow/run.sh verify` with the command that rebuilds it, `main` refuses to start
  on it, and the consumer's previous output is not lost;
- changing a key that a job does not read reruns nothing; reordering entries reruns nothing;
- outputs are group-readable (the process umask, not safetensors' 0600);
- torchvision weights are read with weights_only=True.
"""

import copy
import os
import re
import stat
import subprocess
import sys
import time
import types

import pytest
import yaml

from compbench import lines, ops
from compbench.artifacts import RECORD, verify_tree
from compbench.compose import grid as compose_grid
from compbench.lowrank import grid as lowrank_grid
from compbench.memtrain import grid as memtrain_grid
from conftest import ROOT, copy_repo, planned_jobs, snakemake

SMOKE = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())


def changed(*pairs):
    cfg = copy.deepcopy(SMOKE)
    for path, value in pairs:
        *parents, last = path.split(".")
        node = cfg
        for k in parents:
            node = node.setdefault(k, {})
        node[last] = value
    return cfg


def prepared(cfg):
    from compbench.config import prepare

    return prepare(copy.deepcopy(cfg), ROOT / "config" / "schema.yaml")


def run_sh(wd, *args, **kw):
    env = {**os.environ, "COMPBENCH_VENV": sys.prefix, "COMPBENCH_SKIP_SETUP": "1", "COMPBENCH_CORES": "2"}
    return subprocess.run(["bash", "workflow/run.sh", *args], cwd=wd, env=env, capture_output=True, text=True, **kw)


# ------------------------------------------------------------ what a job's params hold (fast)


def test_params_hold_only_what_a_job_reads():
    base = prepared(SMOKE)
    # evaluation.perplexity.c4_documents: read only by evaluations on c4
    more = prepared(changed(("evaluation.perplexity.c4_documents", 7)))
    assert lines.evaluation_settings(base, "tiny") == lines.evaluation_settings(more, "tiny")
    assert lines.evaluation_settings(base, "c4") != lines.evaluation_settings(more, "c4")
    # memtrain.hyper.lora.rank: read by the LoRA run only, not by GaLore's pretraining
    lora8 = prepared(changed(("memtrain.hyper.lora", {"rank": 8, "alpha": 8})))
    assert memtrain_grid.job_settings(base, "pretrain", "p16", "galore") == memtrain_grid.job_settings(lora8, "pretrain", "p16", "galore")
    assert memtrain_grid.job_settings(base, "finetune", "tiny", "lora") != memtrain_grid.job_settings(lora8, "finetune", "tiny", "lora")
    # the ablation reads its base method's hyper-parameters and learning rate (memtrain.recipe's rule)
    s = memtrain_grid.job_settings(base, "finetune", "tiny", "qgalore_nosr")
    assert list(s["hyper"]) == ["qgalore"] and s["lr"] == {"default": 0.003}
    # lowrank.finetune.n_documents: C4 only; a mode reads its own learning rate only
    docs = prepared(changed(("lowrank.finetune.n_documents", 99), ("lowrank.finetune.lr", {"full": 0.5, "lrc": 0.001, "lora": 0.003})))
    assert lowrank_grid.finetune_settings(base, "lrc") == lowrank_grid.finetune_settings(docs, "lrc")
    assert lowrank_grid.finetune_settings(base, "full") != lowrank_grid.finetune_settings(docs, "full")
    c4 = prepared(changed(("lowrank.finetune.data", "c4"), ("lowrank.finetune.n_documents", 99)))
    assert lowrank_grid.finetune_settings(c4, "lrc")["n_documents"] == 99


def test_compose_run_names_and_params_do_not_depend_on_order():
    ivs = SMOKE["compose"]["interventions"]
    reordered = changed(("compose.interventions", dict(reversed(list(ivs.items())))))
    assert list(reordered["compose"]["interventions"]) != list(ivs)
    assert compose_grid.runs(prepared(SMOKE)) != [] and sorted(compose_grid.runs(prepared(SMOKE))) == sorted(
        compose_grid.runs(prepared(reordered))
    )
    assert set(compose_grid.pairs(prepared(SMOKE))) == {"ft__ga", "ft__wanda", "ga__wanda", "ft__wanda-s0.7"}
    # a run's params: only the entries it applies
    assert compose_grid.run_interventions(SMOKE, "ft__wanda-s0.7") == {"ft": ivs["ft"], "wanda": ivs["wanda"]}
    assert compose_grid.run_interventions(SMOKE, "none") == {}


# ------------------------------------------------------------ stale locks and verify (fast)


def test_the_report_is_current_until_a_result_a_source_or_the_arguments_change(tmp_path):
    """run.sh main makes the report only when it is not current (compbench.ops report)."""
    results, report = tmp_path / "results", tmp_path / "results" / "report.html"
    for f in ["tables/t.csv", "figures/f.png", "cache/perplexity/k.json"]:
        (results / f).parent.mkdir(parents=True, exist_ok=True)
        (results / f).write_text("x")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.smk").write_text("x")
    old = time.time() - 100
    for p in [*results.rglob("*"), tmp_path / "rules" / "a.smk"]:
        os.utime(p, (old, old))
    args = ["--configfile", "config/smoke.yaml"]
    assert "does not exist" in ops.report_current(report, args, tmp_path)
    report.write_text("<html>")
    assert "no record of the arguments" in ops.report_current(report, args, tmp_path)
    ops.report_made(report, args)
    assert ops.report_current(report, args, tmp_path) is None
    assert "made with other arguments" in ops.report_current(report, [], tmp_path)
    later = report.stat().st_mtime + 5
    os.utime(results / "cache/perplexity/k.json", (later, later))  # the result cache is no report input
    assert ops.report_current(report, args, tmp_path) is None
    for newer in [results / "tables/t.csv", tmp_path / "rules" / "a.smk"]:
        os.utime(newer, (later, later))
        assert ops.report_current(report, args, tmp_path) == f"{newer} is newer than {report}"
        os.utime(newer, (old, old))
    assert ops.report_current(report, args, tmp_path) is None


def test_lock_state_none_stale_live(tmp_path):
    assert ops.lock_state(tmp_path) == ("none", [])
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x\n")
    assert ops.lock_state(tmp_path) == ("stale", [])
    # a live process with snakemake in its command line, working in the directory
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "snakemake"], cwd=tmp_path)
    try:
        time.sleep(0.3)
        state, pids = ops.lock_state(tmp_path)
        assert state == "live" and proc.pid in pids
    finally:
        proc.kill()
        proc.wait()


def test_verify_names_the_damaged_artifact_and_its_rebuild_command(tmp_path, capsys):
    import torch

    from compbench import artifacts

    results = tmp_path / "results"
    with artifacts.atomic_path(results / "variants" / "tiny" / "v") as tmp:
        tmp.mkdir()
        artifacts.save_tensors(tmp / "weights.safetensors", {"w": torch.randn(32, 32)})
    artifacts.write_json(results / "x.json", {"a": 1})
    assert ops.verify(results, []) == 0
    w = results / "variants" / "tiny" / "v" / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    assert ops.verify(results, ["--configfile", "config/smoke.yaml"]) == 1
    err = capsys.readouterr().err
    assert str(w) in err and "1000 bytes, recorded" in err
    assert "rebuild: bash workflow/run.sh snakemake --cores all --force results/variants/tiny/v --configfile config/smoke.yaml" in err


# ------------------------------------------------------------ torchvision weights (fast)


def test_torchvision_weights_are_read_with_weights_only(monkeypatch):
    """torchvision is not pinned: a stand-in module records how the weights are read."""
    import torch.nn as nn

    from compbench.vision import channels

    calls = []

    class Net(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            self.fc = nn.Linear(4, num_classes)

    class Weights:
        def get_state_dict(self, **kw):
            calls.append(kw)
            return Net().state_dict()

    class Enum:
        __members__ = {"IMAGENET1K_V1": Weights()}

        def __getitem__(self, k):
            return self.__members__[k]

    tvm = types.SimpleNamespace(resnet18=Net, get_model_weights=lambda kind: Enum())
    monkeypatch.setitem(sys.modules, "torchvision", types.SimpleNamespace(models=tvm))
    monkeypatch.setitem(sys.modules, "torchvision.models", tvm)
    model = channels.build({"kind": "resnet18", "weights": "IMAGENET1K_V1", "n_classes": 3})
    assert calls == [{"progress": True, "check_hash": True, "weights_only": True}]
    assert model.fc.out_features == 3
    with pytest.raises(ValueError, match="IMAGENET1K_V2.*allowed: IMAGENET1K_V1"):
        channels.build({"kind": "resnet18", "weights": "IMAGENET1K_V2", "n_classes": 3})


# ------------------------------------------------------------ end to end


@pytest.mark.workflow
def test_kill_9_then_run_sh_main_finishes_without_a_manual_unlock(tmp_path):
    from test_faults import FAULT_TARGETS as targets
    from test_faults import killed_mid_write

    wd = killed_mid_write(tmp_path)
    assert list((wd / ".snakemake" / "locks").iterdir()), "the killed run left no lock"
    (wd / "results/fault-release").write_text("")
    proc = run_sh(wd, "main", *targets, "--configfile", "config/smoke.yaml", timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "stale Snakemake lock" in out and "unlocking with: snakemake --unlock" in out
    for name in ("atomic.txt", "direct.txt", "consumed.txt"):
        assert (wd / "results/fault" / name).read_text().strip() == "complete", name


@pytest.mark.workflow
def test_run_sh_main_refuses_beside_a_live_run(tmp_path):
    wd = copy_repo(tmp_path)
    (wd / ".snakemake" / "locks").mkdir(parents=True)
    (wd / ".snakemake" / "locks" / "0.output.lock").write_text("x\n")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "snakemake"], cwd=wd)
    try:
        proc = run_sh(wd, "main", "results/corpus/lee/train.txt", "--configfile", "config/smoke.yaml", timeout=300)
    finally:
        live.kill()
        live.wait()
    assert proc.returncode == 1 and f"another Snakemake works in {wd}" in proc.stderr and str(live.pid) in proc.stderr
    assert not (wd / "results" / "corpus").exists()


def nothing_planned(wd, target) -> bool:
    out = snakemake(wd, "-n", target, "--configfile", "config/smoke.yaml").stdout
    return "Nothing to be done" in out


def truncation_story(wd, variant="train-lora", batch="memtrain"):
    """Truncate a weight file inside the directory output results/variants/tiny/<variant> of a
    finished run in ``wd``, check what the guarantee says, and restore the file (bytes and
    time) afterwards, so the run stays as it was. (A copied workdir would not do: the code
    inputs are absolute paths, so Snakemake would plan everything again in a copy.) The
    consumer is the perplexity table of the variant's batch (compbench.lines.perplexity_batches)."""
    vdir = f"results/variants/tiny/{variant}"
    consumer_rel = f"results/eval/tiny/perplexity-{batch}-tiny.csv"
    weights = sorted((wd / vdir).glob("*.safetensors"))[0]
    consumer = wd / consumer_rel
    saved, wstat = weights.read_bytes(), weights.stat()
    before, mtime = consumer.read_bytes(), consumer.stat().st_mtime
    assert run_sh(wd, "verify").returncode == 0
    assert nothing_planned(wd, consumer_rel)
    weights.write_bytes(saved[: len(saved) // 2])
    try:
        # What the issue found: Snakemake sees a directory's time, not its content.
        assert nothing_planned(wd, consumer_rel)
        proc = run_sh(wd, "verify", "--configfile", "config/smoke.yaml")
        assert proc.returncode == 1
        assert str(weights.relative_to(wd)) in proc.stderr and "recorded" in proc.stderr
        rebuild = f"bash workflow/run.sh snakemake --cores all --force {vdir} --configfile config/smoke.yaml"
        assert rebuild in proc.stderr
        # main does not start on it: no consumer reads the damaged file, none loses its output
        proc = run_sh(wd, "main", consumer_rel, "--configfile", "config/smoke.yaml")
        assert proc.returncode == 1 and "not started: damaged artifacts" in proc.stderr
        assert consumer.read_bytes() == before and consumer.stat().st_mtime == mtime
        # the consumer's loader itself refuses the damaged input, naming it
        code = f"import sys; sys.path.insert(0, 'workflow'); from compbench import variants; variants.load({str(wd / vdir)!r})"
        load = subprocess.run([sys.executable, "-c", code], cwd=wd, capture_output=True, text=True)
        assert load.returncode != 0 and "CorruptArtifact" in load.stderr and weights.name in load.stderr
        # the printed command is the one that rebuilds it (dry run: the job that writes it, forced)
        plan = run_sh(wd, "snakemake", "-n", *rebuild.split()[3:])
        out = plan.stdout + plan.stderr
        assert plan.returncode == 0 and "forced:" in out and re.search(r"^total\s+1\s*$", out, re.M), out[-2000:]
    finally:
        weights.write_bytes(saved)
        os.utime(weights, ns=(wstat.st_atime_ns, wstat.st_mtime_ns))
    assert verify_tree(wd / "results") == {} and nothing_planned(wd, consumer_rel)


@pytest.mark.workflow
def test_truncated_artifact_is_named_by_verify_and_no_result_is_lost(smoke):
    truncation_story(smoke.workdir)


CHANGES_NOT_READ = {
    "c4_documents when c4 is not evaluated": changed(("evaluation.perplexity.c4_documents", 7)),
    "lowrank.finetune.n_documents with tiny data": changed(("lowrank.finetune.n_documents", 99)),
    "the learning rate of a fine-tuning mode not run": changed(("lowrank.finetune.lr", {"full": 0.5, "lrc": 0.001, "lora": 0.003})),
    "memtrain.pretrain.n_documents with tiny data": changed(("memtrain.pretrain.n_documents", 5)),
    "compose.interventions reordered": changed(("compose.interventions", dict(reversed(list(SMOKE["compose"]["interventions"].items()))))),
}


@pytest.mark.workflow
@pytest.mark.parametrize("what", list(CHANGES_NOT_READ))
def test_a_key_no_job_reads_reruns_nothing(smoke, tmp_path, what):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CHANGES_NOT_READ[what], sort_keys=False))
    assert planned_jobs(smoke.workdir, "--configfile", str(tmp_path / "c.yaml")) == {}


@pytest.mark.workflow
def test_lora_rank_reruns_the_lora_run_not_galore_pretraining(smoke, tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(changed(("memtrain.hyper.lora", {"rank": 8, "alpha": 8}))))
    jobs = planned_jobs(smoke.workdir, "--configfile", str(tmp_path / "c.yaml"))
    assert jobs.get("memtrain_finetune") == 1 and "memtrain_pretrain" not in jobs, jobs


@pytest.mark.workflow
def test_outputs_are_group_readable(smoke):
    mask = os.umask(0)
    os.umask(mask)
    if mask & 0o050:
        pytest.skip(f"this process's umask {mask:03o} itself withholds group read")
    bad = []
    for p in [smoke.results(), *smoke.results().rglob("*")]:
        m = stat.S_IMODE(p.lstat().st_mode)
        need = 0o050 if p.is_dir() else 0o040
        if not p.is_symlink() and m & need != need:
            bad.append(f"{p.relative_to(smoke.workdir)} {m:o}")
    assert not bad, bad[:20]
    weights = smoke.results("models", "tiny", "model.safetensors")
    assert stat.S_IMODE(weights.stat().st_mode) == 0o666 & ~mask
    assert (smoke.results("models", "tiny") / RECORD).exists()


@pytest.mark.workflow
def test_run_sh_main_with_nothing_to_do_keeps_the_report(smoke):
    """A run with nothing to do makes no new report (compbench.ops report: one DAG build,
    not two plus the rendering); the report a first run.sh main made stays as it is."""
    wd, report = smoke.workdir, smoke.results("report.html")
    first = run_sh(wd, "main", "--configfile", "config/smoke.yaml")
    assert first.returncode == 0, first.stderr[-3000:]
    made = report.stat().st_mtime_ns
    second = run_sh(wd, "main", "--configfile", "config/smoke.yaml")
    assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr, second.stderr[-3000:]
    assert "report: results/report.html is up to date" in second.stderr
    assert report.stat().st_mtime_ns == made
    assert "perplexity.csv" in report.read_text(errors="replace")

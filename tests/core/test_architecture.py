"""The package's shape (docs/architecture.md): a small core plus one subpackage per
research line, no import cycles, torch-free grids, method names from one source,
code inputs derived from the import graph, one target rule per line."""

import importlib
import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from compbench import deps, lines
from conftest import ROOT, copy_repo, snakemake

PKG = ROOT / "workflow" / "compbench"
CORE = {
    "__init__", "allocator", "artifacts", "blocks", "calibration", "calibration_catalogue", "calibration_data", "config", "corpus",
    "deps", "device", "figures", "htmltable", "knowledge", "lines", "models", "ops", "perplexity", "perplexity_batch", "pretrain", "provenance",
    "registry", "resultcache", "runlog", "sources", "stats", "tasks", "tokenizer", "variants", "verdicts", "warmstart", "zeroshot",
}  # fmt: skip


def test_top_level_holds_only_core_modules_and_each_line_is_a_subpackage():
    assert {p.stem for p in PKG.glob("*.py")} == CORE
    subpackages = {p.parent.name for p in PKG.glob("*/__init__.py")}
    assert subpackages == {line.package for line in lines.LINES.values()}
    for line in lines.LINES.values():
        for module in ("grid", "check", "claims"):
            assert (PKG / line.package / f"{module}.py").exists(), f"{line.package}/{module}.py missing"
        assert callable(line.grid.targets) and callable(line.module("check").check)


def test_no_import_cycles():
    assert deps.cycles() == []


def test_the_cycle_detector_finds_a_cycle(monkeypatch):
    g = dict(deps.graph())
    g["compbench.registry"] = g["compbench.registry"] | {"compbench.variants"}  # variants imports registry
    monkeypatch.setattr(deps, "graph", lambda: g)
    assert any({"compbench.registry", "compbench.variants"} <= set(c) for c in deps.cycles())  # one strongly connected component


def _graph_uncached():
    """The import graph parsed from every module's source, no cache involved."""
    out = {}
    for name, path in deps.modules().items():
        d = deps.imports_of_source(path.read_text(), name, path.name == "__init__.py")
        d.discard(name)
        out[name] = frozenset(d)
    return out


def test_the_import_graph_cache_gives_the_parsed_graph_and_misses_an_edited_module(tmp_path, monkeypatch):
    """compbench.deps keeps each module's imported names keyed by its bytes: a second parse reads
    them back (the parser is not called) and equals the parse of the sources; an edited module is
    parsed again; a malformed cache is ignored and rewritten; an unwritable one is only not kept."""
    cache = tmp_path / ".snakemake" / "compbench-imports.json"
    monkeypatch.setattr(deps, "CACHE", cache)
    want = _graph_uncached()
    deps.graph.cache_clear()
    try:
        assert deps.graph() == want and cache.exists()
        deps.graph.cache_clear()
        parse = deps.imported_names
        monkeypatch.setattr(deps, "imported_names", lambda *a: pytest.fail(f"parsed although cached: {a[1:]}"))
        assert deps.graph() == want

        # a package of two modules: an edit of one is parsed again, the other read back
        pkg = tmp_path / "compbench"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "a.py").write_text("from compbench import b\n")
        (pkg / "b.py").write_text("import os\n")
        files = {"compbench": pkg / "__init__.py", "compbench.a": pkg / "a.py", "compbench.b": pkg / "b.py"}
        monkeypatch.setattr(deps, "modules", lambda: files)
        monkeypatch.setattr(deps, "imported_names", parse)
        deps.graph.cache_clear()
        assert deps.graph()["compbench.a"] == {"compbench", "compbench.b"}
        parsed = []
        monkeypatch.setattr(deps, "imported_names", lambda source, *a: parsed.append(a[0]) or parse(source, *a))
        (pkg / "a.py").write_text("import json\n")
        deps.graph.cache_clear()
        assert deps.graph()["compbench.a"] == set() and parsed == ["compbench.a"]
        assert len(json.loads(cache.read_text())) == 3  # only this parse's entries are kept

        for bad in ("{not json", '{"k": [1]}', "[]"):
            cache.write_text(bad)
            deps.graph.cache_clear()
            assert deps.graph()["compbench.a"] == set() and len(json.loads(cache.read_text())) == 3, bad
        monkeypatch.setattr(deps, "CACHE", tmp_path / "file" / "x.json")
        (tmp_path / "file").write_text("a file where the cache's folder would be")
        deps.graph.cache_clear()
        assert deps.graph()["compbench.a"] == set()
    finally:
        deps.graph.cache_clear()


def test_grids_checks_claims_and_the_line_registry_import_without_torch():
    mods = ["compbench.lines", "compbench.config", "compbench.deps", "compbench.ops", "compbench.verdicts", "compbench.sources"]
    mods += [f"compbench.{line.package}.{m}" for line in lines.LINES.values() for m in ("grid", "check", "claims")]
    mods += ["compbench.compose.data"]  # imported by compose.grid.data_needs_model while the DAG is built (1.6 s with torch)
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in mods)
        + "print(sorted(m for m in ('torch', 'numpy', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "workflow", check=True)
    assert out.stdout.strip() == "[]"


# Schema definitions (config/schema.yaml) -> the registry holding the same names.
SCHEMA_REGISTRIES = {
    "prune_method": ("compbench.prune.methods", "PRUNERS"),
    "allocation_rule": ("compbench.spectra.allocate", "ALLOCATORS"),
    "xmin_rule": ("compbench.spectra.esd", "XMIN_RULES"),
    "lowrank_allocation": ("compbench.lowrank.compress", "ALLOCATIONS"),
    "lowrank_finetune_mode": ("compbench.lowrank.finetune", "MODES"),
    "lowrank_train_data": ("compbench.lowrank.finetune", "TRAIN_DATA"),
    "quant_method": ("compbench.quant.methods", "QUANTISERS"),
    "training_variant": ("compbench.memtrain.methods", "VARIANTS"),
    "memtrain_data": ("compbench.memtrain.data", "DATA"),
    "pass_method": ("compbench.vision.pass_sparsity", "METHODS"),
    "ddp_rule": ("compbench.speech.ddp", "SELECT"),
    "speech_corpus_source": ("compbench.speech.corpora", "CORPORA"),
    "perplexity_dataset": ("compbench.perplexity", "DATASETS"),
    "corpus_source": ("compbench.corpus", "SOURCES"),
    "model_source": ("compbench.sources", "SOURCES"),
    "compose_data_source": ("compbench.compose.data", "SOURCES"),
}


def _schema():
    return yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())


@pytest.mark.parametrize("definition", sorted(SCHEMA_REGISTRIES))
def test_schema_enum_equals_the_registry(definition):
    module, name = SCHEMA_REGISTRIES[definition]
    registry = getattr(importlib.import_module(module), name)
    assert sorted(_schema()["definitions"][definition]["enum"]) == registry.names()


def test_calibration_sources_agree_across_schema_catalogue_and_registries():
    from compbench import calibration_catalogue, calibration_data

    schema = sorted(_schema()["definitions"]["calibration_source"]["enum"])
    assert schema == sorted(calibration_catalogue.CATALOGUE)
    assert schema == sorted(set(calibration_data.SOURCES.names()) | set(calibration_data.EXAMPLES.names()))


def test_every_method_enum_of_the_schema_is_a_shared_definition():
    """Method lists name a definition (one place), never an inline copy of it."""
    text = (ROOT / "config" / "schema.yaml").read_text()
    definitions = _schema()["definitions"]
    for definition in SCHEMA_REGISTRIES:
        enum = definitions[definition]["enum"]
        inline = f"enum: [{', '.join(enum)}]"
        same = sum(d.get("enum") == enum for d in definitions.values())  # definitions that happen to share a list
        assert text.count(inline) == same, f"{inline} is repeated instead of $ref: '#/definitions/{definition}'"


# ---------------------------------------------------------------- code inputs


def _rel(paths):
    return {str(p).split("compbench/", 1)[1] for p in paths}


def test_code_inputs_follow_the_import_graph():
    prune = _rel(deps.script_code(ROOT / "workflow/scripts/prune.py"))
    assert {"prune/wanda.py", "prune/sparsegpt.py", "prune/magnitude.py", "prune/masked.py", "calibration.py", "blocks.py"} <= prune
    assert not any(p.startswith(("memtrain/", "spectra/", "lowrank/", "compose/")) for p in prune)
    figure = _rel(deps.script_code(ROOT / "workflow/scripts/figure_spectra.py"))
    assert "spectra/plots.py" in figure and "figures.py" in figure and "prune/wanda.py" not in figure
    assert "spectra/esd.py" not in figure  # the figure starts without torch: the fit's module is no code of it
    # a lazy import inside a function is a dependency too
    assert "compbench.corpus" in deps.graph()["compbench.calibration_data"]


def test_a_compose_run_depends_only_on_its_own_interventions():
    skip = ["compbench.compose.interventions.methods"]  # the list that loads every intervention
    rmu = _rel(deps.script_code(ROOT / "workflow/scripts/compose_run.py", skip=skip, extra=["compbench.compose.interventions.rmu"]))
    assert "compose/pipeline.py" in rmu and "compose/interventions/registry.py" in rmu
    assert "compose/interventions/rmu.py" in rmu and "compose/interventions/unlearn_common.py" in rmu
    assert "compose/interventions/edit_memit.py" not in rmu and "compose/interventions/gptq.py" not in rmu


def test_no_rule_lists_code_by_hand():
    for smk in (ROOT / "rules").glob("*.smk"):
        text = smk.read_text()
        assert "pkg(" not in text, smk.name
        for block in re.split(r"(?m)^rule ", text)[1:]:
            if "script:" in block:
                assert re.search(r"code=(code|batch_code)\(|code=lambda wc: code\(", block), (
                    f"{smk.name}: rule {block.split(':')[0]} has no derived code input"
                )


# ---------------------------------------------------------------- lines and targets


def _smoke_config():
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    validate(cfg, str(ROOT / "config" / "schema.yaml"), set_default=True)
    return cfg


def test_every_line_is_active_in_the_smoke_config_and_has_targets():
    cfg = _smoke_config()
    assert [line.name for line in lines.active(cfg)] == list(lines.LINES)
    for name in lines.LINES:
        assert lines.targets(cfg, name), name
    assert set(lines.targets(cfg)) >= {t for name in lines.LINES for t in lines.targets(cfg, name)}


def test_the_evaluation_covers_every_lines_variants():
    """The memtrain variants are in perplexity.csv's inputs (they were not when rule
    files registered providers by include order)."""
    cfg = _smoke_config()
    model = next(iter(cfg["models"]))
    names = set(lines.variants(cfg, model))
    assert {"dense", "train-lora"} <= names and any(n.startswith("prune-") for n in names) and any(n.startswith("lowrank-") for n in names)
    batches = lines.perplexity_batches(cfg, model)
    assert "train-lora" in batches["memtrain"] and f"results/eval/{model}/perplexity-memtrain-tiny.csv" in lines.perplexity_outputs(cfg)
    assert lines.variant_line(cfg, model, "train-lora").name == "memtrain"
    assert lines.variant_line(cfg, model, "dense") is None
    # every variant in exactly one batch, in its line's; the tables a consumer reads hold its variants
    assert sorted(v for b in batches.values() for v in b) == sorted(names)
    assert batches["dense"] == {"dense": lines.variants(cfg, model)["dense"]}
    assert lines.perplexity_outputs(cfg, model, ["dense", "train-lora"]) == [
        f"results/eval/{model}/perplexity-dense-tiny.csv",
        f"results/eval/{model}/perplexity-memtrain-tiny.csv",
    ]


def test_variants_per_job_cuts_a_lines_batch_in_order():
    cfg = _smoke_config()
    model = next(iter(cfg["models"]))
    whole = lines.perplexity_batches(cfg, model)
    cfg["evaluation"]["perplexity"]["variants_per_job"] = 4
    cut = lines.perplexity_batches(cfg, model)
    n = len(whole["pruning"])
    assert [b for b in cut if b.startswith("pruning")] == [f"pruning-{i + 1}" for i in range((n + 3) // 4)]
    assert [v for b in cut if b.startswith("pruning") for v in cut[b]] == list(whole["pruning"])
    assert all(len(m) <= 4 for m in cut.values())
    assert lines.perplexity_batch_line("pruning-2").name == "pruning" and lines.perplexity_batch_line("dense") is None
    with pytest.raises(ValueError, match=r"unknown perplexity batch 'pruning' of model 'tiny'; allowed: dense, pruning-1"):
        lines.perplexity_batch(cfg, model, "pruning")


def test_lm_eval_batches_hold_each_zero_shot_variant_once():
    """The lm-eval jobs (rule lm_eval): the variants some line evaluates zero-shot (the
    calibration study's cells and the dense model; the trade-off plane with
    tradeoff.zeroshot), each in exactly one batch, by line, cut by variants_per_job; the
    consumers' tables are the batches holding their variants."""
    from compbench.calibration_study import grid as cstudy_grid
    from compbench.tradeoff import grid as tradeoff_grid

    cfg = _smoke_config()
    model = next(iter(cfg["models"]))
    cfg["tradeoff"]["zeroshot"] = False
    study = ["dense", *cstudy_grid.variants(cfg, model)]
    batches = lines.lm_eval_batches(cfg, model)
    assert sorted(v for b in batches.values() for v in b) == sorted(study) and batches["dense"] == {
        "dense": lines.variants(cfg, model)["dense"]
    }
    assert set(batches) == {"dense", "calibration_study"} and tradeoff_grid.zeroshot_outputs(cfg, model) == []
    assert cstudy_grid.lm_eval_outputs(cfg, model) == [
        f"results/eval/{model}/lm_eval-dense.csv",
        f"results/eval/{model}/lm_eval-calibration_study.csv",
    ]
    assert cstudy_grid.lm_eval_items(cfg, model) == [f"results/eval/{model}/lm_eval_items-calibration_study.csv"]
    cfg["tradeoff"]["zeroshot"] = True
    plane = set(tradeoff_grid.plane(cfg, model))
    batches = lines.lm_eval_batches(cfg, model)
    names = [v for b in batches.values() for v in b]
    assert len(names) == len(set(names)) and set(names) == plane | set(study) and "pruning" in batches
    assert lines.lm_eval_outputs(cfg, model, [next(iter(batches["pruning"]))]) == [f"results/eval/{model}/lm_eval-pruning.csv"]
    cfg["calibration_study"]["lm_eval"]["variants_per_job"] = 2
    cut = lines.lm_eval_batches(cfg, model)
    assert all(len(m) <= 2 for m in cut.values()) and [v for b in cut for v in cut[b]] == names
    with pytest.raises(ValueError, match=r"unknown lm-eval batch 'pruning' of model 'tiny'; allowed: dense, "):
        lines.lm_eval_batch(cfg, model, "pruning")
    with pytest.raises(ValueError, match="allowed: 'lm_eval', 'lm_eval_items'"):
        lines.lm_eval_outputs(cfg, model, ["dense"], what="items")


def test_include_order_does_not_change_the_plan(tmp_path):
    """Reversing the include order of the rule files plans the same jobs."""
    (tmp_path / "a").mkdir()
    wd = copy_repo(tmp_path / "a")
    forward = snakemake(wd, "-n", "--configfile", "config/smoke.yaml", "--quiet", "rules").stdout
    snakefile = wd / "Snakefile"
    text = snakefile.read_text()
    assert 'sorted(Path(workflow.basedir, "rules").glob("*.smk"))' in text
    snakefile.write_text(
        text.replace(
            'sorted(Path(workflow.basedir, "rules").glob("*.smk"))', 'sorted(Path(workflow.basedir, "rules").glob("*.smk"), reverse=True)'
        )
    )
    backward = snakemake(wd, "-n", "--configfile", "config/smoke.yaml", "--quiet", "rules").stdout

    def stats(out):
        table = out.split("Job stats:", 1)[1].split("total", 1)[0]
        return dict(re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M))

    assert stats(forward) == stats(backward) and int(stats(forward)["perplexity"]) > 0


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
    if not shutil.os.path.exists(ruff):
        pytest.skip("ruff is not installed (requirements.txt pins it)")
    out = subprocess.run([ruff, "check", "--no-cache", "workflow", "tests"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:]

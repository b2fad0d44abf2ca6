"""Zero-shot evaluation with lm-eval (EleutherAI lm-evaluation-harness).

* Real models: lm-eval's own tasks by name (``boolq``, ``rte``, ``hellaswag``,
  ``winogrande``, ``arc_easy``, ``arc_challenge``, ``openbookqa``, ``gsm8k`` …).
* Embedded default: the generated tasks of :mod:`compbench.tasks`, written here
  as lm-eval task YAML files (``cb_<task>``) over JSONL files of their held-out
  items (absolute ``data_files`` paths), found through
  ``lm_eval.tasks.TaskManager(include_path=...)``.

:func:`evaluate` runs ``lm_eval.simple_evaluate`` with the ``hf`` model on a
model *directory*. A variant that is not a plain ``save_pretrained`` directory
(e.g. a masked pruning variant: base + masks) is materialised with
:func:`materialised`: loaded with :func:`compbench.variants.load` (masks applied to
a fresh copy of the base weights), saved with its tokenizer into a temporary
directory, removed afterwards; the cached base model is never rewritten. Modules a
variant replaced (a low-rank factor pair where the architecture has one linear) are
saved as the equal plain linear (:func:`as_plain`): ``from_pretrained`` would
otherwise initialise those weights at random, silently.

:func:`evaluate_batch` (rule ``lm_eval``) evaluates a batch of variants in one process,
reading a variant whose inputs, settings and code did not change back from the result
cache (:mod:`compbench.resultcache`), as the perplexity batches do.

Everything runs offline: ``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE`` and
``TRANSFORMERS_OFFLINE`` are set unless a real task needs the hub, and
``HF_HOME`` points inside the results tree.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

PREFIX = "cb_"  # lm-eval task name of a generated task: cb_<task>


def offline_task_names(names) -> list[str]:
    return [n for n in names if n.startswith(PREFIX)]


def write_task(task: str, items_path: str | Path, out_dir: str | Path) -> Path:
    """An lm-eval task YAML for a generated task (multiple choice, zero-shot)."""
    import yaml

    from compbench.artifacts import write_text

    items_path = Path(items_path).resolve()
    spec = {
        "task": f"{PREFIX}{task}",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(items_path)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{prompt}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{label}}",
        "target_delimiter": " ",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }
    path = Path(out_dir) / f"{PREFIX}{task}.yaml"
    write_text(path, yaml.safe_dump(spec, sort_keys=False))
    return path


def offline_env(hf_home: str | Path, offline: bool = True) -> None:
    """Set the HF environment for this process (before datasets / lm_eval are imported)."""
    os.environ["HF_HOME"] = str(Path(hf_home).resolve())
    os.environ["HF_DATASETS_CACHE"] = str(Path(hf_home).resolve() / "datasets")
    if offline:
        for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ[k] = "1"


def as_plain(model):
    """``model`` with every module that its architecture builds as ``nn.Linear`` but the
    variant replaced by another linear map (a low-rank factor pair ``U(V(x))``) turned
    back into an ``nn.Linear`` of the same map (W = f(I) − f(0), b = f(0)), so that
    ``save_pretrained`` writes exactly the tensors ``from_pretrained`` reads. Raises if
    the state dict still differs from the architecture's."""
    import torch
    from torch import nn
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(model.config)
    want = dict(plain.named_modules())
    for name, mod in list(model.named_modules()):
        ref = want.get(name)
        if not isinstance(ref, nn.Linear) or isinstance(mod, nn.Linear):
            continue
        p = next(mod.parameters(), None)
        if p is None:
            continue  # no weights to save: the check below names it
        with torch.no_grad():
            b = mod(torch.zeros(1, ref.in_features, dtype=p.dtype, device=p.device))[0]
            W = (mod(torch.eye(ref.in_features, dtype=p.dtype, device=p.device)) - b).T
        if tuple(W.shape) != (ref.out_features, ref.in_features):
            continue
        lin = nn.Linear(ref.in_features, ref.out_features, bias=ref.bias is not None, device=p.device, dtype=p.dtype)
        with torch.no_grad():
            lin.weight.copy_(W)
            if lin.bias is not None:
                lin.bias.copy_(b)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, lin)
    missing, extra = set(plain.state_dict()) - set(model.state_dict()), set(model.state_dict()) - set(plain.state_dict())
    if missing or extra:
        raise RuntimeError(
            f"the variant's tensors do not match its architecture (lm-eval would load it wrongly): missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
        )
    return model


@contextlib.contextmanager
def materialised(variant_dir: str | Path, device="cpu", dtype=None, tmp_root: str | Path | None = None) -> Iterator[Path]:
    """A directory lm-eval's ``hf`` model can load: the variant itself if it is a
    plain model directory, else a temporary ``save_pretrained`` copy (removed on exit)."""
    from compbench import tokenizer as tk
    from compbench import variants

    variant_dir = Path(variant_dir)
    if variants.manifest(variant_dir)["kind"] == "dense":
        yield variant_dir
        return
    model, tok_dir = variants.load(variant_dir, device="cpu", dtype=dtype)
    model = as_plain(model)
    tmp = Path(tempfile.mkdtemp(prefix="lmeval-variant-", dir=tmp_root))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tk.load(tok_dir).save_pretrained(str(tmp))
        del model
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate(
    model_dir: str | Path,
    tasks: list[str],
    include_path: str | Path | None = None,
    batch_size: int = 16,
    limit: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    log_samples: bool = False,
) -> dict:
    """``lm_eval.simple_evaluate`` with the ``hf`` model on ``model_dir``; returns lm-eval's result dict."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    real = [t for t in tasks if not t.startswith(PREFIX)]
    tm = TaskManager(include_path=str(include_path) if include_path else None, include_defaults=bool(real))
    try:
        return lm_eval.simple_evaluate(
            model="hf",
            model_args={"pretrained": str(model_dir), "dtype": dtype, "device": str(device)},
            tasks=list(tasks),
            task_manager=tm,
            batch_size=batch_size,
            limit=limit,
            log_samples=log_samples,
            bootstrap_iters=0,
            random_seed=0,
            numpy_random_seed=0,
            torch_random_seed=0,
            fewshot_random_seed=0,
        )
    except Exception as e:
        if real and os.environ.get("HF_DATASETS_OFFLINE") == "1":
            raise RuntimeError(
                f"lm-eval tasks {real} need their data sets from the Hugging Face hub, but HF_DATASETS_OFFLINE=1: {e}"
            ) from e
        raise


def tidy(results: dict, **columns) -> list[dict]:
    """One row per (task, metric) of lm-eval's results (stderr dropped)."""
    rows = []
    for task, metrics in results["results"].items():
        for key, value in metrics.items():
            if key in ("alias", "sample_len") or "_stderr" in key or not isinstance(value, (int, float)):
                continue
            metric = key.split(",")[0]
            rows.append(
                {
                    **columns,
                    "dataset": task,
                    "metric": metric,
                    "value": float(value),
                    "n": int(results.get("n-samples", {}).get(task, {}).get("effective", 0)) or None,
                }
            )
    return rows


ITEM_METRICS = ("acc", "acc_norm", "exact_match")  # per-sample 0/1 metrics whose items are kept


def items(results: dict, **columns) -> list[dict]:
    """Per-item correctness of every task (lm-eval's logged samples, ``log_samples=True``):
    one row per (task, metric) of :data:`ITEM_METRICS` with the items in ``doc_id`` order as
    a 0/1 string (:func:`compbench.stats.bits`), for the verdicts' bootstrap over items. A
    metric whose per-sample values are not all 0 or 1 is left out."""
    from compbench import stats

    rows = []
    for task, samples in (results.get("samples") or {}).items():
        samples = sorted(samples, key=lambda e: e["doc_id"])
        for metric in ITEM_METRICS:
            vals = [e.get(metric) for e in samples]
            if not vals or any(v not in (0, 1, True, False) for v in vals):
                continue
            rows.append({**columns, "dataset": task, "metric": metric, "n": len(vals), "correct": stats.bits([bool(v) for v in vals])})
    return rows


ITEM_COLUMNS = ["model", "variant", "dataset", "metric", "n", "correct"]


def variant_rows(path, lm: dict, spec: dict, include_path, device, tmp_root=None) -> tuple[list[dict], list[dict]]:
    """One variant's zero-shot evaluation, as the per-variant job did it: the tidy rows
    (:func:`tidy`, with ``chance`` and provenance; no ``model`` / ``variant``) and the
    per-item rows (:func:`items`)."""
    import torch

    from compbench import models, provenance

    device = torch.device(device)
    with provenance.measure(device) as run:
        with materialised(path, dtype=None, tmp_root=tmp_root) as model_dir:
            res = evaluate(
                model_dir,
                lm["tasks"],
                include_path,
                lm["batch_size"],
                lm.get("limit"),
                str(device),
                models.eval_dtype(spec),
                log_samples=True,
            )
    rec = provenance.stamp({"model": spec, "lm_eval": lm}, 0, run)
    rows = [{**r, "chance": chance(r["dataset"]), **rec} for r in tidy(res)]
    return rows, items(res)


def cache_parts(path, lm: dict, spec: dict, include_path, code_files, device) -> dict:
    """What a variant's zero-shot result depends on (the cache key, :mod:`compbench.resultcache`):
    its content and its base model's, the generated tasks' files, the lm-eval settings, the
    model spec, the device type, the code (files' bytes) and the library versions."""
    from compbench import provenance, resultcache, variants

    m = variants.manifest(path)
    return {
        "what": "lm_eval",
        "variant": resultcache.artifact_id(path),
        "base": resultcache.artifact_id(m["base"]) if "base" in m else None,
        "tasks": resultcache.artifact_id(include_path) if include_path else None,
        "settings": {"spec": spec, "lm_eval": lm},
        "device": str(device).split(":")[0],
        "code": resultcache.files_id(code_files, Path(__file__).resolve().parents[1]),
        "versions": {k: v for k, v in provenance.versions().items() if k != "snakemake"},
    }


def evaluate_batch(
    model_name: str, members: dict, lm: dict, spec: dict, include_path, device, cache=None, code_files=(), log=None, tmp_root=None
):
    """Rule ``lm_eval``: every variant of ``members`` (name -> directory) in turn; the tidy
    rows and the per-item rows of all, in order. With a :class:`compbench.resultcache.ResultCache`,
    a variant whose key is stored (with its items) is read back instead of evaluated."""
    from compbench import resultcache

    rows, item_rows = [], []
    for name, path in members.items():
        got, how, key = resultcache.cached(
            cache,
            lambda: cache_parts(path, lm, spec, include_path, code_files, device),
            lambda: variant_rows(path, lm, spec, include_path, device, tmp_root),
            list,  # the items
        )
        got_rows, got_items = got
        if log is not None:
            acc = ", ".join(f"{r['dataset']} {r['value']:.3f}" for r in got_rows if r["metric"] == "acc")
            log.info("%s/%s lm-eval: %s, acc %s%s", model_name, name, how, acc, f" (key {key[:12]})" if key else "")
        rows += [{"model": model_name, "variant": name, **r} for r in got_rows]
        item_rows += [{"model": model_name, "variant": name, **r} for r in got_items]
    return rows, item_rows


def chance(task: str) -> float:
    """Chance accuracy of a generated task (NaN for lm-eval's own tasks)."""
    from compbench import tasks as generated

    name = task[len(PREFIX) :] if task.startswith(PREFIX) else None
    return generated.chance(name) if name in generated.TASKS else math.nan

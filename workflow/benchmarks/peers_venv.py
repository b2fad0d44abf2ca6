"""The part of the peer benchmark that runs in the peers venv (``results/peers-venv``: torch
2.13 CPU, llmcompressor 0.14, galore-torch 1.0; made by ``peers.py``, never a project
dependency). ``peers.py`` starts it with a job file; it writes the rows to ``rows.json`` beside it.

Both tools of every pair run here, in this one process, on the same torch and threads:

* ``sparsegpt`` and ``wanda``: compbench ``prune_model`` (one uniform ratio for every block) vs
  llmcompressor ``oneshot`` with ``SparseGPTModifier`` / ``WandaPruningModifier`` (the same
  sparsity, every decoder linear, ``lm_head`` ignored, block size 128 and dampening 0.01 in
  both), the same calibration windows in the same batches. Each run starts from the dense model
  loaded anew (loading not timed). Compared: the realised sparsity, the share of weights both
  keep or both prune, and the perplexity of the two pruned models (compbench's evaluation, on
  the same evaluation windows).
* ``galore_step`` and ``galore_refresh``: compbench ``ProjectedAdamW`` vs galore-torch
  ``GaLoreAdamW`` (``proj_type='std'``) with the same groups (decoder linears projected at
  ``rank``, scale 0.25, refresh every 200 steps; everything else plain AdamW), lr 1e-3, eps 1e-8,
  on a copy of the model holding the same gradients (one causal-LM backward on a batch of the
  calibration windows). ``galore_refresh`` is the first step (the SVD of every projected
  gradient), ``galore_step`` the median of the steps after it. Compared: the optimizer state's
  bytes (moments and projection matrices) and the parameters after the last step.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import alternate, load_average, matmul_peak, median, pair_rows  # noqa: E402

GALORE = dict(update_proj_gap=200, scale=0.25)
ADAM = dict(lr=1e-3, eps=1e-8, weight_decay=0.0)


def decoder_weights(model) -> dict:
    from compbench.blocks import linear_modules

    return {name: mod.weight for _, name, mod in linear_modules(model)}


def prune_ours(method: str, model, calib, sparsity: float, batch: int):
    from compbench.blocks import decoder_blocks
    from compbench.prune.methods import prune_model

    ratios = {b: sparsity for b in range(len(decoder_blocks(model)))}
    prune_model(model, method, ratios, None, calib, "cpu", batch)
    return model


def prune_llmcompressor(method: str, model, calib, sparsity: float, batch: int, tokenizer_dir: str):
    import torch
    from llmcompressor import oneshot
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
    from torch.utils.data import DataLoader

    kw = dict(sparsity=sparsity, mask_structure="0:0", targets=["Linear"], ignore=["re:.*lm_head"])
    modifier = SparseGPTModifier(block_size=128, dampening_frac=0.01, **kw) if method == "sparsegpt" else WandaPruningModifier(**kw)
    ones = torch.ones(calib.shape[1], dtype=torch.long)
    data = DataLoader([{"input_ids": calib[i], "attention_mask": ones} for i in range(len(calib))], batch_size=batch, shuffle=False)
    oneshot(
        model=model,
        tokenizer=tokenizer_dir,
        dataset=data,
        recipe=modifier,
        num_calibration_samples=len(calib),
        max_seq_length=calib.shape[1],
    )
    return model


def task_prune(method: str, job: dict, calib, evals, versions: dict) -> list[dict]:
    import torch

    from compbench import models, perplexity

    batch, sparsity = job["batch_size"], job["sparsity"]
    tok_dir = job.get("tokenizer_dir", job["model_dir"])
    load = lambda: models.load(job["model_dir"])
    warm = calib[: min(2, len(calib))]  # warm-up on two windows: imports, tracing, first kernels
    prune_ours(method, load(), warm, sparsity, batch)
    prune_llmcompressor(method, load(), warm, sparsity, batch, tok_dir)
    out = alternate(
        {
            "compbench": (load, lambda m: prune_ours(method, m, calib, sparsity, batch)),
            "llmcompressor": (
                load,
                lambda m: prune_llmcompressor(method, m, calib, sparsity, batch, tok_dir),
            ),
        },
        job["prune_repeats"],
        warmup=0,
    )
    kept = {tool: {n: (w != 0) for n, w in decoder_weights(out[tool][1]).items()} for tool in out}
    total = sum(m.numel() for m in kept["compbench"].values())
    sparse = {tool: 1 - sum(int(m.sum()) for m in kept[tool].values()) / total for tool in kept}
    same = sum(int((kept["compbench"][n] == kept["llmcompressor"][n]).sum()) for n in kept["compbench"]) / total
    seq = evals.shape[1]
    with torch.no_grad():
        ppl = {tool: perplexity.evaluate(out[tool][1], evals.reshape(-1), seq, batch)["perplexity"] for tool in out}
    rel = abs(ppl["compbench"] - ppl["llmcompressor"]) / ppl["llmcompressor"]
    dsparse = abs(sparse["compbench"] - sparse["llmcompressor"])
    agrees = "yes" if rel <= 0.02 and dsparse <= 0.002 else "no"
    check = (
        f"sparsity {sparse['compbench']:.4f} vs {sparse['llmcompressor']:.4f}; same mask on {same:.2%} of weights; "
        f"pruned perplexity relative difference {rel:.2g} (tolerance 2 %)"
    )
    size = f"{len(calib)}×{calib.shape[1]} calibration tokens, {sparsity:g} uniform, batch {batch}"
    times = {tool: t for tool, (t, _) in out.items()}
    rows = pair_rows(
        method, size, times, job["prune_repeats"], calib.numel(), "calibration tokens/s", "pruned perplexity", ppl, agrees, check, versions
    )
    rows[0]["note"] = "prune_model (sequential calibration through the pruned blocks)"
    rows[1]["note"] = "oneshot, default pipeline; the timed call includes its set-up (processor, tracing)"
    return rows


def state_bytes(optimizer) -> int:
    """Bytes of every tensor in the optimizer's state: moments, and the tensors a projector holds."""
    import torch

    def size(v) -> int:
        if isinstance(v, torch.Tensor):
            return v.numel() * v.element_size()
        if isinstance(v, (list, tuple)):
            return sum(size(x) for x in v)
        if hasattr(v, "__dict__"):
            return sum(size(x) for x in vars(v).values())
        return 0

    return sum(size(v) for state in optimizer.state.values() for v in state.values())


def task_galore(job: dict, calib, versions: dict) -> list[dict]:
    import time

    from galore_torch import GaLoreAdamW

    from compbench import models
    from compbench.memtrain.galore import ProjectedAdamW
    from compbench.memtrain.registry import decoder_linears

    rank, steps = job["rank"], job["galore_steps"]
    base = models.load(job["model_dir"]).train()
    x = calib[: job["train_batch"]]
    base(input_ids=x, labels=x).loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in base.named_parameters()}
    base.zero_grad(set_to_none=True)
    projected = {f"{n}.weight" for n in decoder_linears(base)}

    def prepare(tool: str):
        m = copy.deepcopy(base)
        for n, p in m.named_parameters():
            p.grad = grads[n].clone()
        proj = [p for n, p in m.named_parameters() if n in projected]
        rest = [p for n, p in m.named_parameters() if n not in projected]
        if tool == "compbench":
            opt = ProjectedAdamW([{"params": rest}, {"params": proj, "rank": rank, **GALORE}], **ADAM)
        else:
            opt = GaLoreAdamW(
                [{"params": rest}, {"params": proj, "rank": rank, "proj_type": "std", **GALORE}], no_deprecation_warning=True, **ADAM
            )
        return m, opt

    first, later, last = {"compbench": [], "galore-torch": []}, {"compbench": [], "galore-torch": []}, {}
    names = list(first)
    for r in range(1 + job["repeats"]):  # run 0: warm-up
        for tool in names if r % 2 == 0 else names[::-1]:
            m, opt = prepare(tool)
            times = []
            for _ in range(1 + steps):
                t0 = time.perf_counter()
                opt.step()
                times.append(time.perf_counter() - t0)
            if r:
                first[tool].append(times[0])
                later[tool].append(median(times[1:]))
            last[tool] = (m, opt)
    sb = {tool: state_bytes(last[tool][1]) for tool in names}
    diff = max(float((a - b).abs().max()) for a, b in zip(last["compbench"][0].parameters(), last["galore-torch"][0].parameters()))
    scale = max(float(p.abs().max()) for p in base.parameters())
    agrees = "yes" if sb["compbench"] == sb["galore-torch"] and diff <= 1e-5 * scale else "no"
    check = f"state bytes {sb['compbench']} vs {sb['galore-torch']}; max |Δparameter| after {1 + steps} steps {diff:.2g} (largest parameter {scale:.3g})"
    size = f"rank {rank}, {len(projected)} projected matrices, gradients of {x.shape[0]}×{x.shape[1]} tokens"
    rows = []
    for task, times in (("galore_step", later), ("galore_refresh", first)):
        rows += pair_rows(task, size, times, job["repeats"], 1, "steps/s", "optimizer state bytes", sb, agrees, check, versions)
    rows[-2]["note"] = rows[-1]["note"] = "the first step: an SVD of every projected gradient"
    return rows


def main(job_path: str) -> None:
    job_path = Path(job_path)
    job = json.loads(job_path.read_text())
    os.environ.setdefault("LLM_COMPRESSOR_LOG_LEVEL", "WARNING")  # read when llmcompressor is imported
    import torch

    torch.set_num_threads(job["threads"])
    from importlib.metadata import version

    from safetensors.torch import load_file

    import compbench

    ids = load_file(job["ids"])
    calib, evals = ids["calib"], ids["eval"]
    versions = {"compbench": compbench.__version__, "llmcompressor": version("llmcompressor"), "galore-torch": version("galore-torch")}
    rows = []
    load = load_average()
    peak = matmul_peak()
    rows.append(
        dict(task="matmul_peak", size=f"{peak['n']}×{peak['n']} float32", tool="torch.matmul", version=torch.__version__, repeats=peak["repeats"],
             seconds=peak["seconds"], throughput=peak["gflops"], unit="GFLOP/s", ratio=1.0, note="in the peers venv", load_before=load)
    )  # fmt: skip
    if "prune" in job["tasks"]:
        for method in ("sparsegpt", "wanda"):
            load = load_average()
            rows += [{**r, "load_before": load} for r in task_prune(method, job, calib, evals, versions)]
    if "galore" in job["tasks"]:
        load = load_average()
        rows += [{**r, "load_before": load} for r in task_galore(job, calib, versions)]
    for r in rows:
        r["torch"] = torch.__version__
    (job_path.parent / "rows.json").write_text(json.dumps(rows))


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isfile(sys.argv[1]):
        sys.exit(f"usage: {sys.argv[0]} JOB.json (written by peers.py); got {sys.argv[1:]}")
    main(sys.argv[1])

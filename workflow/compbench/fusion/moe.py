"""Pareto-set learning by MoE model fusion (Tang et al. 2024, "Towards efficient Pareto
set approximation via mixture of experts based model fusion"), and its baselines.

* Fine-tune one model per task from θ_0; task vectors τ_t = θ_t − θ_0 (Task
  Arithmetic, Ilharco et al. 2023). Choice: the token embeddings and the LM head
  stay frozen (the label words' logits are read from the shared head), so the
  task vectors live in the transformer blocks and the final norm.
* Each transformer MLP (every module named ``*.mlp``: LLaMA's gate/up/down, GPT-2's
  c_fc/c_proj) becomes :class:`MoEMLP`, whose weights are
  ``θ_0 + Σ_t g_{l,t}(r)·τ_t`` (paper Eq. for the upscaled MoE module), with a
  router ``g`` (:class:`Router`, a 2-layer MLP) mapping the preference vector
  ``r`` (on the simplex) to per-layer, per-task coefficients. The remaining
  parameters (attention, norms) are merged by task arithmetic with a fixed
  ``λ`` (``other_lambda``), as in the paper.
* Only the router is trained: each step draws ``r ~ Dir(α·1)`` and minimises
  ``Σ_t r_t·L_t`` (the r-weighted sum of task losses, linear scalarisation of the
  per-task cross-entropies).
* For any ``r`` the module merges back into plain weights
  (:func:`merged_state`): the merged model equals the MoE model at ``r``
  (tested to 1e-5), so inference costs nothing extra.

Baselines: task arithmetic ``θ_0 + Σ_t λ_t τ_t`` on a grid of ``λ``, linear
interpolation between the single-task models ``θ_0 + (1−a)τ_1 + aτ_2``, and the
single-task models themselves (``a`` ∈ {0, 1}).

A task is a list of ``[prompt, label]`` answered by comparing the next-token logits of
its label words' first tokens (:mod:`compbench.fusion.tasks`).
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call


def label_ids(tokenizer, words: list[str]) -> list[int]:
    """First token of each label word (no special tokens); they must differ."""
    ids = [tokenizer(w, add_special_tokens=False).input_ids[0] for w in words]
    if len(set(ids)) != len(ids):
        raise ValueError(f"label words {words} share their first token ({ids}); choose words that tokenise differently")
    return ids


def encode(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask, and the index of each prompt's last token."""
    enc = [tokenizer(p, add_special_tokens=True).input_ids for p in prompts]
    T = max(len(e) for e in enc)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(enc), T), pad, dtype=torch.long)
    att = torch.zeros(len(enc), T, dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, : len(e)] = torch.tensor(e)
        att[i, : len(e)] = 1
    return ids, att, att.sum(1) - 1


class TaskData:
    def __init__(self, tokenizer, task: dict, split: str, device):
        rows = task[split]
        self.ids, self.att, self.last = (t.to(device) for t in encode(tokenizer, [p for p, _ in rows]))
        self.y = torch.tensor([int(y) for _, y in rows], device=device)
        self.labels = label_ids(tokenizer, task["label_words"])
        self.name = task["name"]

    def __len__(self):
        return len(self.y)

    def batch(self, idx):
        return self.ids[idx], self.att[idx], self.last[idx], self.y[idx]


def class_logits(model, ids, att, last, labels) -> torch.Tensor:
    """Logits of the label words' first tokens after each prompt: [B, n_labels]."""
    h = model.base_model(input_ids=ids, attention_mask=att).last_hidden_state
    h = h[torch.arange(len(ids), device=h.device), last]
    head = model.get_output_embeddings()
    w = head.weight[labels]
    out = h @ w.T
    if getattr(head, "bias", None) is not None:
        out = out + head.bias[labels]
    return out


def frozen_names(model) -> set[str]:
    """Parameters kept at θ_0 (token embeddings and LM head, tied or not)."""
    keep = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return {n for n, p in model.named_parameters() if id(p) in keep}


def finetune(model, data: TaskData, steps: int, batch_size: int, lr: float, seed: int, log=None) -> tuple[dict, list]:
    """Fine-tune every non-frozen parameter on one task (AdamW, cosine); returns (τ, losses)."""
    from tqdm import tqdm

    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    frozen = frozen_names(model)
    params = [p for n, p in model.named_parameters() if n not in frozen]
    for n, p in model.named_parameters():
        p.requires_grad_(n not in frozen)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    g = torch.Generator().manual_seed(int(seed))
    model.train()
    losses = []
    for step in tqdm(range(steps), desc=f"finetune {data.name}", mininterval=5):
        idx = torch.randint(0, len(data), (batch_size,), generator=g).to(data.y.device)
        ids, att, last, y = data.batch(idx)
        loss = F.cross_entropy(class_logits(model, ids, att, last, data.labels), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log and (step % max(1, steps // 5) == 0 or step == steps - 1):
            log.info("finetune %s step %d: loss %.4f", data.name, step, losses[-1])
    model.eval()
    tau = {n: (p.detach() - base[n]).cpu() for n, p in model.named_parameters() if n not in frozen}
    return tau, losses


@torch.no_grad()
def evaluate(model, data: TaskData, batch_size: int = 256, items: bool = False) -> dict:
    """Accuracy and mean loss on a task; ``items``: also ``correct``, every item's correctness
    (bool tensor, the per-item results of the intervals)."""
    model.eval()
    ok, loss = [], 0.0
    for b in range(0, len(data), batch_size):
        idx = torch.arange(b, min(b + batch_size, len(data)), device=data.y.device)
        ids, att, last, y = data.batch(idx)
        z = class_logits(model, ids, att, last, data.labels)
        ok.append((z.argmax(-1) == y).cpu())
        loss += float(F.cross_entropy(z, y, reduction="sum"))
    ok = torch.cat(ok)
    out = {"accuracy": int(ok.sum()) / len(data), "loss": loss / len(data)}
    return {**out, "correct": ok} if items else out


def mlp_modules(model) -> list[str]:
    """Names of the transformer MLPs (modules named ``*.mlp``), in order."""
    names = [n for n, _ in model.named_modules() if n.endswith(".mlp")]
    if not names:
        raise ValueError(f"{type(model).__name__}: no `*.mlp` modules to upscale into MoE modules")
    return names


def mlp_of(param: str, mlps: list[str]) -> int | None:
    for i, m in enumerate(mlps):
        if param.startswith(m + "."):
            return i
    return None


def task_arithmetic(base: dict, taus: list[dict], lambdas) -> dict:
    """θ_0 + Σ_t λ_t τ_t for every parameter that has a task vector."""
    return {n: base[n] + sum(float(l) * t[n] for l, t in zip(lambdas, taus)) for n in taus[0]}


def merged_state(base: dict, taus: list[dict], mlps: list[str], coef: torch.Tensor, other_lambda: float) -> dict:
    """Plain weights of the MoE-fused model at router output ``coef`` [L, T]: MLP ``l`` gets
    θ_0 + Σ_t coef[l, t] τ_t, every other parameter θ_0 + λ Σ_t τ_t."""
    out = {}
    for n in taus[0]:
        l = mlp_of(n, mlps)
        c = coef[l] if l is not None else [other_lambda] * len(taus)
        out[n] = base[n] + sum(float(ci) * t[n] for ci, t in zip(c, taus))
    return out


class Router(nn.Module):
    """g: preference r (simplex, T) -> coefficients [L, T]; starts at ``init_lambda`` everywhere.

    The first layer's random initialisation is drawn from ``seed`` in a forked RNG: it neither
    depends on nor advances the process's generator (a fresh interpreter seeds that from the
    OS, so an unseeded router made two runs of one job train different routers)."""

    def __init__(self, n_tasks: int, n_layers: int, hidden: int = 16, init_lambda: float = 0.5, seed: int = 0):
        super().__init__()
        self.n_tasks, self.n_layers = n_tasks, n_layers
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.net = nn.Sequential(nn.Linear(n_tasks, hidden), nn.ReLU(), nn.Linear(hidden, n_layers * n_tasks))
        nn.init.zeros_(self.net[2].weight)
        nn.init.constant_(self.net[2].bias, float(init_lambda))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.net(r).view(self.n_layers, self.n_tasks)


class _Coef:
    value: torch.Tensor | None = None


class MoEMLP(nn.Module):
    """An MLP whose weights are θ_0 + Σ_t g_t(r) τ_t, g set per forward by the router."""

    def __init__(self, mlp: nn.Module, prefix: str, index: int, base: dict, taus: list[dict], holder: _Coef):
        super().__init__()
        self.mlp, self.index, self.holder = mlp, index, holder
        names = [n for n, _ in mlp.named_parameters()]
        self.base = {k: base[f"{prefix}.{k}"] for k in names}
        self.taus = [{k: t[f"{prefix}.{k}"] for k in names} for t in taus]

    def forward(self, *args, **kwargs):
        g = self.holder.value[self.index]
        params = {k: self.base[k] + sum(g[t] * self.taus[t][k] for t in range(len(self.taus))) for k in self.base}
        return functional_call(self.mlp, params, args, kwargs)


class FusedModel(nn.Module):
    """The base model with every MLP upscaled to :class:`MoEMLP`, the rest merged by task arithmetic."""

    def __init__(
        self, model, taus: list[dict], router_hidden: int = 16, init_lambda: float = 0.5, other_lambda: float = 0.5, seed: int = 0
    ):
        super().__init__()
        device = next(model.parameters()).device
        base = {n: p.detach().clone() for n, p in model.named_parameters()}
        taus = [{n: v.to(device) for n, v in t.items()} for t in taus]
        self.mlps = mlp_modules(model)
        self.holder = _Coef()
        # non-MLP parameters: task arithmetic with other_lambda
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in taus[0] and mlp_of(n, self.mlps) is None:
                    p.copy_(base[n] + other_lambda * sum(t[n] for t in taus))
                p.requires_grad_(False)
        for i, name in enumerate(self.mlps):
            parent, _, leaf = name.rpartition(".")
            mlp = model.get_submodule(name)
            setattr(model.get_submodule(parent), leaf, MoEMLP(mlp, name, i, base, taus, self.holder))
        self.model = model
        self.router = Router(len(taus), len(self.mlps), router_hidden, init_lambda, seed).to(device)

    def set_preference(self, r: torch.Tensor) -> torch.Tensor:
        self.holder.value = self.router(r)
        return self.holder.value

    def class_logits(self, r, ids, att, last, labels):
        self.set_preference(r)
        return class_logits(self.model, ids, att, last, labels)


def train_router(fused: FusedModel, tasks: list[TaskData], steps: int, batch_size: int, lr: float, alpha: float, seed: int, log=None):
    """Router training on r ~ Dir(α·1) with loss Σ_t r_t L_t; returns (history, wall seconds)."""
    from tqdm import tqdm

    device = tasks[0].y.device
    torch.manual_seed(int(seed))
    g = torch.Generator().manual_seed(int(seed))
    dirichlet = torch.distributions.Dirichlet(torch.full((len(tasks),), float(alpha)))
    opt = torch.optim.Adam(fused.router.parameters(), lr=lr)
    hist = []
    t0 = time.perf_counter()
    fused.model.eval()  # no dropout; only the router learns
    for step in tqdm(range(steps), desc="router", mininterval=5):
        r = dirichlet.sample().to(device)
        coef = fused.set_preference(r)
        losses = []
        for d in tasks:
            idx = torch.randint(0, len(d), (batch_size,), generator=g).to(device)
            ids, att, last, y = d.batch(idx)
            losses.append(F.cross_entropy(class_logits(fused.model, ids, att, last, d.labels), y))
        loss = sum(ri * li for ri, li in zip(r, losses))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist.append(
            {
                "step": step,
                "loss": float(loss.detach()),
                **{f"r_{d.name}": float(ri) for d, ri in zip(tasks, r)},
                **{f"loss_{d.name}": float(li.detach()) for d, li in zip(tasks, losses)},
                "coef_mean": float(coef.detach().mean()),
            }
        )
        if log and (step % max(1, steps // 5) == 0 or step == steps - 1):
            log.info("router step %d: r %s losses %s", step, [round(float(x), 3) for x in r], [round(float(x), 4) for x in losses])
    return hist, time.perf_counter() - t0


def preference_sweep(n: int) -> list[list[float]]:
    """``n`` evenly spaced preference vectors (a, 1 − a) on the 2-task simplex, a from 0 to 1."""
    return [[1 - i / (n - 1), i / (n - 1)] for i in range(n)] if n > 1 else [[0.5, 0.5]]


def _eval_state(model, state: dict, tasks: list[TaskData], batch_size: int) -> list[dict]:
    with torch.no_grad():
        params = dict(model.named_parameters())
        for n, v in state.items():
            params[n].copy_(v)
    return [evaluate(model, d, batch_size, items=True) for d in tasks]


def sweep(model, taus: list[dict], router: Router, tasks: list[TaskData], cfg: dict, log=None) -> list[dict]:
    """Evaluate every method's models on every task: MoE fusion at each preference of the sweep
    (merged to plain weights), task arithmetic on the λ grid, linear interpolation, single-task models.
    Rows: method, setting, coef (JSON), task, metric, value; accuracy rows also ``correct``, every
    test item's correctness ('b' and one 0/1 per item, compbench.stats.bits)."""
    import itertools
    import json

    from tqdm import tqdm

    from compbench import stats

    device = next(model.parameters()).device
    base = {n: p.detach().clone() for n, p in model.named_parameters() if n in taus[0]}
    taus = [{n: v.to(device) for n, v in t.items()} for t in taus]
    mlps = mlp_modules(model)
    bs = cfg["eval_batch_size"]
    todo = []  # (method, setting, coef, make the weights, key): models with one key have the same weights
    for i, r in enumerate(preference_sweep(cfg["n_preferences"])):
        with torch.no_grad():
            coef = router(torch.tensor(r, dtype=torch.float32, device=device))
        state = merged_state(base, taus, mlps, coef, cfg["other_lambda"])
        todo.append(("moe_fusion", json.dumps([round(x, 4) for x in r]), coef.tolist(), lambda state=state: state, ("moe", i)))

    def arithmetic(method, setting, lam):  # θ_0 + Σ_t λ_t τ_t, made when evaluated; its λ is its key
        lam = list(lam)
        todo.append((method, setting, lam, lambda: task_arithmetic(base, taus, lam), tuple(float(x) for x in lam)))

    for lam in itertools.product(cfg["ta_grid"], repeat=len(taus)):
        arithmetic("task_arithmetic", json.dumps(list(lam)), lam)
    n = cfg["n_interpolation"]
    for i in range(n):  # (1 − a)(θ_0 + τ_1) + a(θ_0 + τ_2) = θ_0 + (1 − a) τ_1 + a τ_2
        a = i / (n - 1) if n > 1 else 0.5
        arithmetic("interpolation", json.dumps(round(a, 4)), [1 - a, a])
    for t in range(len(taus)):
        arithmetic("single_task", tasks[t].name, [1.0 if s == t else 0.0 for s in range(len(taus))])
    arithmetic("base", "theta_0", [0.0] * len(taus))
    # the interpolation's ends, the single-task models and the base model are points of the task
    # arithmetic grid too (ta_grid has 0 and 1): same λ, same weights, evaluated once
    done = {}
    rows = []
    for method, setting, coef, make, key in tqdm(todo, desc="evaluate", mininterval=5):
        if key not in done:
            done[key] = _eval_state(model, make(), tasks, bs)
        for d, res in zip(tasks, done[key]):
            res = dict(res)
            ok = stats.bits(res.pop("correct").numpy())
            for metric, value in res.items():
                rows.append(
                    {
                        "method": method,
                        "setting": setting,
                        "coef": json.dumps(coef),
                        "task": d.name,
                        "metric": metric,
                        "value": value,
                        "correct": ok if metric == "accuracy" else "",
                    }
                )
        if log:
            log.info("%s %s: %s", method, setting, [round(r["value"], 4) for r in rows[-2 * len(tasks) :] if r["metric"] == "accuracy"])
    return rows

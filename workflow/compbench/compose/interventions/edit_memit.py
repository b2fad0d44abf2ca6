"""MEMIT (Meng et al. 2023, "Mass-Editing Memory in a Transformer"), batch editing
of a band of MLP layers; the composability paper's main editor. Reference:
kmeng01/memit (memit/memit_main.py, memit/compute_z.py, memit/compute_ks.py), as
vendored in EasyEdit and run by hartvigsen-group/composable-interventions with
conf/edit/memit.yaml (LLaMA: clamp_norm_factor 4, v_num_grad_steps 25, v_lr 0.5,
v_weight_decay 1e-3, kl_factor 0.0625, mom2_update_weight 15000,
fact_token subject_last): this module's defaults.

1. Key statistics (Eq. 14's C₀ = λ·E[k kᵀ]): the second moment of the inputs k of
   every band layer's down-projection over calibration text, computed once per
   model and cached as safetensors (``ctx.cache_dir``).
2. Context templates (``get_context_templates``): "{}" and ``context_prefixes``
   texts of ``context_len`` tokens sampled from the unedited model (top-k 5) after
   "The", "Therefore", "Because", "I", "You", each followed by ". {}".
3. Target vectors (Eq. 16, ``compute_z``), one edit at a time: z = h + δ, h the
   output of the band's last block at the lookup token of the bare prompt (the
   SUBJECT'S LAST TOKEN, ``fact_token`` subject_last; ``last`` = the prompt's last
   token), δ added at the lookup token of every prompt, minimising with Adam
     NLL(target_new | each context template + prompt), averaged over templates
     + kl_factor · KL(p_δ ‖ p_0) of the next token at the subject in "{subject} is a"
     + v_weight_decay · ‖δ‖ / ‖h‖²,
   δ projected back into ‖δ‖ ≤ clamp_norm · ‖h‖ after each step, stopping at
   loss < ``early_stop`` (5e-2) or after ``v_steps`` evaluations (v_steps − 1 steps).
4. Spreading (Alg. 1 and Eq. 14, ``execute_memit``): for each band layer l in
   order, with the keys K (down_proj inputs at the lookup token, current model,
   averaged over the "{}" template and over the prefixed ones, then between the
   two: ``compute_ks``) and the remaining residual R = (z − h_current) / (layers
   left), h_current at the bare prompt, ΔW_l = R Kᵀ (λ C_l + K Kᵀ)⁻¹.

Block outputs are read and written with hooks on the block (the reference's
``layer_module_tmp``), so before the final norm also when the band ends at the
last block. Deviations: prompts are tokenised with the target's tokens appended
as ids (the reference appends ``tok.decode(target_ids[:-1])`` to the text), the
subject's last token is found by character offsets (a fast tokenizer is needed;
the reference tokenises prefix, subject and suffix separately), and the prefixes
are sampled with a seeded generator (``seed``), not the global one.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import torch
import torch.nn.functional as F

from compbench.compose.interventions.edit_ft import band
from compbench.compose.interventions.registry import register
from compbench.compose.interventions.residual import edited_block_output


@torch.no_grad()
def key_covariance(model, ids: torch.Tensor, layers: list[int], device, batch_size: int = 8) -> dict[int, torch.Tensor]:
    """E[k kᵀ] of the down-projection inputs of each layer over every calibration token."""
    sums, count = {}, [0]
    hooks = []
    for l in layers:

        def hook(mod, inp, out, l=l):
            k = inp[0].reshape(-1, inp[0].shape[-1]).double()
            sums[l] = sums.get(l, 0) + k.T @ k
            if l == layers[0]:
                count[0] += k.shape[0]

        hooks.append(model.model.layers[l].mlp.down_proj.register_forward_hook(hook))
    try:
        for i in range(0, ids.shape[0], batch_size):
            model(ids[i : i + batch_size].to(device))
    finally:
        for h in hooks:
            h.remove()
    return {l: (sums[l] / count[0]).float() for l in layers}


def cached_covariance(model, ctx, layers: list[int], n_stats: int) -> dict[int, torch.Tensor]:
    """Load the key statistics from ``ctx.cache_dir`` or compute and cache them (safetensors, never pickle)."""
    from compbench.artifacts import load_tensors, save_tensors

    if ctx.calib_ids is None:
        raise ValueError("intervention 'memit' needs calibration data for its key statistics")
    ids = ctx.calib_ids[:n_stats]
    path = Path(ctx.cache_dir) / f"memit-cov-n{ids.shape[0]}x{ids.shape[1]}.safetensors" if ctx.cache_dir else None
    have = load_tensors(path) if path is not None and path.exists() else {}
    missing = [l for l in layers if f"layer{l}" not in have]
    if missing:
        ctx.log(f"memit: computing key statistics of layers {missing} over {tuple(ids.shape)} tokens")
        have.update({f"layer{l}": c.cpu() for l, c in key_covariance(model, ids, missing, ctx.device).items()})
        if path is not None:
            save_tensors(path, have, {"n_samples": str(ids.shape[0]), "seq_len": str(ids.shape[1])})
    return {l: have[f"layer{l}"].to(ctx.device) for l in layers}


FACT_TOKENS = ("subject_last", "last")
# the reference's z settings for LLaMA (composable-interventions conf/edit/memit.yaml)
REFERENCE_Z = {
    "v_steps": 25,
    "v_lr": 0.5,
    "v_weight_decay": 1e-3,
    "kl_factor": 0.0625,
    "clamp_norm": 4.0,
    "early_stop": 5e-2,
    "fact_token": "subject_last",
}
STARTERS = ("The", "Therefore", "Because", "I", "You")  # memit_main.get_context_templates


@torch.no_grad()
def context_templates(model, tok, n_prefixes: int, length: int, seed: int, device) -> list[list[str]]:
    """``[["{}"], [prefix + ". {}", ...]]``: ``n_prefixes`` texts of ``length`` tokens
    sampled top-k 5 from the model after the reference's starters (cycled)."""
    if n_prefixes == 0:
        return [["{}"]]
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_prefixes):
        start = STARTERS[i % len(STARTERS)]
        ids = tok(start)["input_ids"]
        special = len(ids) - len(tok(start, add_special_tokens=False)["input_ids"])
        while len(ids) - special < length:
            probs = torch.softmax(model(input_ids=torch.tensor([ids], device=device)).logits[0, -1].float(), -1).cpu()
            top = torch.topk(probs, 5)
            ids.append(int(top.indices[torch.multinomial(top.values / top.values.sum(), 1, generator=g)]))
        text = unicodedata.normalize("NFKD", tok.decode(ids, skip_special_tokens=True)).replace("\n\n", " ")
        out.append(text.replace("{", " ").replace("}", " ") + ". {}")
    return [["{}"], out]


def encode_at_subject(tok, template: str, prompt: str, subject: str, fact_token: str) -> tuple[list[int], int]:
    """Token ids of ``template`` with ``prompt`` in its "{}", and the lookup index:
    the last token overlapping the subject's characters (subject_last), or the
    last token (last)."""
    if fact_token not in FACT_TOKENS:
        raise ValueError(f"memit fact_token={fact_token!r}; allowed: {', '.join(FACT_TOKENS)}")
    at = template.index("{}")
    head, text = template[:at], template[:at] + prompt + template[at + 2 :]
    if fact_token == "last":
        ids = tok(text)["input_ids"]
        return ids, len(ids) - 1
    s = prompt.find(subject)
    if s < 0:
        raise ValueError(
            f"memit fact_token='subject_last': subject {subject!r} is not in prompt {prompt!r}; use fact_token 'last' for such data"
        )
    try:
        enc = tok(text, return_offsets_mapping=True)
    except NotImplementedError:
        raise ValueError("memit fact_token='subject_last' needs a fast tokenizer (offsets); use fact_token 'last'") from None
    end = len(head) + s + len(subject)
    return enc["input_ids"], max(i for i, (a, b) in enumerate(enc["offset_mapping"]) if b > a and a < end)


@torch.no_grad()
def _at_lookups(model, tok, encoded: list[tuple[list[int], int]], module, take_input: bool, device) -> torch.Tensor:
    """``module``'s input (or output) at each sequence's lookup index, one forward pass."""
    from compbench.compose.interventions.unlearn_common import pad

    ids, att = pad(tok, [e for e, _ in encoded])
    cache = []
    handle = module.register_forward_hook(
        lambda m, inp, out: cache.append(inp[0] if take_input else (out[0] if isinstance(out, tuple) else out))
    )
    try:
        model(input_ids=ids.to(device), attention_mask=att.to(device))
    finally:
        handle.remove()
    return cache[0][torch.arange(len(encoded)), torch.tensor([i for _, i in encoded])]


def compute_keys(model, tok, requests, layer: int, templates: list[list[str]], fact_token: str, device) -> torch.Tensor:
    """(n, d_ff) down_proj inputs at the lookup token, averaged within each template
    group, then over the groups (``compute_ks``)."""
    enc = [encode_at_subject(tok, t, r.prompt, r.subject, fact_token) for r in requests for grp in templates for t in grp]
    k = _at_lookups(model, tok, enc, model.model.layers[layer].mlp.down_proj, True, device).float()
    per = k.view(len(requests), -1, k.shape[-1])
    bounds = [0]
    for grp in templates:
        bounds.append(bounds[-1] + len(grp))
    return torch.stack([per[:, a:b].mean(1) for a, b in zip(bounds, bounds[1:])], 1).mean(1)


def current_outputs(model, tok, requests, layer: int, fact_token: str, device) -> torch.Tensor:
    """(n, d) block ``layer``'s output at the lookup token of each bare prompt."""
    enc = [encode_at_subject(tok, "{}", r.prompt, r.subject, fact_token) for r in requests]
    return _at_lookups(model, tok, enc, model.model.layers[layer], False, device).float()


def compute_z(
    model,
    tok,
    request,
    layer: int,
    templates: list[list[str]],
    device,
    **settings,
) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """MEMIT's target vector for one edit (Eq. 16 with the reference's loss, see the
    module docstring); ``settings`` override :data:`REFERENCE_Z`. Returns z, h and per
    evaluation the loss terms."""
    unknown = sorted(set(settings) - set(REFERENCE_Z))
    if unknown:
        raise ValueError(f"memit compute_z: unknown setting(s) {unknown}; allowed: {', '.join(REFERENCE_Z)}")
    hp = {**REFERENCE_Z, **settings}
    v_steps, kl_factor, clamp_norm, fact_token = hp["v_steps"], hp["kl_factor"], hp["clamp_norm"], hp["fact_token"]
    tgt = tok(request.target_new, add_special_tokens=False)["input_ids"]
    if not tgt:
        raise ValueError(f"target {request.target_new!r} of prompt {request.prompt!r} encodes to no token")
    seqs, look, first = [], [], []
    for t in (t for grp in templates for t in grp):
        ids, i = encode_at_subject(tok, t, request.prompt, request.subject, fact_token)
        seqs.append(ids + tgt[:-1])
        look.append(i)
        first.append(len(ids) - 1)  # the logits here predict tgt[0]
    kl_ids, kl_i = encode_at_subject(tok, "{}", f"{request.subject} is a", request.subject, fact_token)
    seqs.append(kl_ids)
    look.append(kl_i)
    from compbench.compose.interventions.unlearn_common import pad

    ids, att = (t.to(device) for t in pad(tok, seqs))
    n_rw, T = len(first), len(tgt)
    pos = (torch.tensor(first)[:, None] + torch.arange(T)).to(device)
    tgt_t = torch.tensor(tgt, device=device)
    rows, cols = torch.arange(len(seqs), device=device), torch.tensor(look, device=device)
    delta = torch.zeros(model.config.hidden_size, device=device, requires_grad=True)
    state: dict = {}

    def add_delta(h):
        if "h" not in state:  # recorded once, before any δ (the reference's target_init)
            state["h"] = h[0, look[0]].detach().float().clone()
        h = h.clone()
        h[rows, cols] = h[rows, cols] + delta.to(h.dtype)
        return h

    req = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam([delta], lr=hp["v_lr"])
    history, kl_init = [], None
    try:
        with edited_block_output(model, layer, add_delta):
            for it in range(v_steps):
                logits = model(input_ids=ids, attention_mask=att).logits.float()
                logp = torch.log_softmax(logits[:n_rw], -1)
                nll = (-logp[torch.arange(n_rw, device=device)[:, None], pos, tgt_t[None, :]].sum(1) / T).mean()
                kl_logp = torch.log_softmax(logits[n_rw, kl_i][None], -1)
                kl_init = kl_logp.detach().clone() if kl_init is None else kl_init
                kl = kl_factor * F.kl_div(kl_init, kl_logp, log_target=True, reduction="batchmean")
                wd = hp["v_weight_decay"] * (delta.norm() / state["h"].norm() ** 2)
                loss = nll + kl + wd
                history.append({k: float(v.detach()) for k, v in (("loss", loss), ("nll", nll), ("kl", kl), ("weight_decay", wd))})
                if loss < hp["early_stop"] or it == v_steps - 1:
                    break
                opt.zero_grad()
                loss.backward()
                opt.step()
                max_norm = clamp_norm * state["h"].norm()  # ‖δ‖ ≤ clamp·‖h‖
                if delta.norm() > max_norm:
                    with torch.no_grad():
                        delta.mul_(max_norm / delta.norm())
    finally:
        for p, r in req.items():
            p.requires_grad_(r)
    return state["h"] + delta.detach(), state["h"], history


@register("memit", "edit", needs_calibration=True)
def memit(
    model,
    ctx,
    layers: list[int] | None = None,
    v_steps: int = 25,
    v_lr: float = 0.5,
    v_weight_decay: float = 1e-3,
    kl_factor: float = 0.0625,
    clamp_norm: float = 4.0,
    early_stop: float = 5e-2,
    fact_token: str = "subject_last",
    context_prefixes: int = 5,
    context_len: int = 10,
    mom2_weight: float = 15000.0,
    n_stats: int = 32,
    seed: int = 0,
) -> dict:
    if fact_token not in FACT_TOKENS:
        raise ValueError(f"memit fact_token={fact_token!r}; allowed: {', '.join(FACT_TOKENS)}")
    torch.manual_seed(seed)
    ls = band(model, layers)
    C = cached_covariance(model, ctx, ls, n_stats)
    tok, dev, reqs = ctx.tokenizer, ctx.device, ctx.data.edits
    model.eval()
    templates = context_templates(model, tok, context_prefixes, context_len, seed, dev)
    zs, hist = [], []
    for r in reqs:
        hp = dict(
            v_steps=v_steps, v_lr=v_lr, v_weight_decay=v_weight_decay, kl_factor=kl_factor, clamp_norm=clamp_norm, early_stop=early_stop
        )
        z, _, h = compute_z(model, tok, r, ls[-1], templates, dev, fact_token=fact_token, **hp)
        zs.append(z)
        hist.append(h)
    Z = torch.stack(zs)  # (n, d)
    for i, l in enumerate(ls):
        with torch.no_grad():
            K = compute_keys(model, tok, reqs, l, templates, fact_token, dev).T.double()  # (d_ff, n)
            R = ((Z - current_outputs(model, tok, reqs, ls[-1], fact_token, dev)) / (len(ls) - i)).T.double()  # (d, n)
            adj_k = torch.linalg.solve(mom2_weight * C[l].double() + K @ K.T, K)  # (λC + KKᵀ)⁻¹ K
            W = model.model.layers[l].mlp.down_proj.weight
            W.add_((R @ adj_k.T).to(W.dtype))  # R Kᵀ (λC + KKᵀ)⁻¹
    return {
        "layers": ls,
        "v_loss": sum(h[-1]["loss"] for h in hist) / len(hist),
        "v_evaluations": sum(len(h) for h in hist) / len(hist),
        "edits": len(reqs),
        "context_templates": sum(map(len, templates)),
    }

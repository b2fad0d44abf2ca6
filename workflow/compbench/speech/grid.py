"""The speech runs a config asks for: run name -> resolved spec (torch-free: the rules call this
at DAG-build time).

* ``dense``
* ``lrsms-<setting>-<init>``   one per ``variants.lrsms.settings`` entry (a list of {name, attn, ff}) (init ``svd``), plus ``random``
  for the settings listed in ``variants.lrsms.random_init``
* ``ddp-<granularity>-<fraction>[-<budget>]``  budget ``epochs`` (no suffix: the dense recipe's epochs),
  ``steps`` (the dense recipe's optimizer steps) or ``time`` (the dense run's training wall time), one
  per ``variants.ddp.budgets`` entry
* ``msrs-<mode>``              mode = what follows mask stabilisation: ``sparse`` or ``dense``

Every run is trained once per seed of ``speech.seeds`` (``runs/<run>/s<seed>/``): adding a seed
adds only that seed's jobs. The corpus and its features are the same for every seed.
"""

from __future__ import annotations

from compbench.lines import RESULTS


def runs(sp: dict) -> dict[str, dict]:
    v = sp.get("variants", {})
    out: dict[str, dict] = {}
    if v.get("dense", True):
        out["dense"] = {"variant": "dense"}
    lr = v.get("lrsms")
    if lr:
        for s in lr["settings"]:
            name = s["name"]
            for init in ["svd"] + (["random"] if name in lr.get("random_init", []) else []):
                out[f"lrsms-{name}-{init}"] = {
                    "variant": "lrsms",
                    "setting": name,
                    "attn": list(s["attn"]),
                    "ff": list(s["ff"]),
                    "min_rank": lr["min_rank"],
                    "init": init,
                }
    d = v.get("ddp")
    if d:
        for g, f, b in ((g, f, b) for g in d["granularities"] for f in d["fractions"] for b in d.get("budgets", ["epochs"])):
            out[f"ddp-{g}-{f}" + ("" if b == "epochs" else f"-{b}")] = {
                "variant": "ddp",
                "granularity": g,
                "fraction": float(f),
                "budget": b,
                "rule": d["rule"],
                "epsilon": d["epsilon"],
                "max_skip": d["max_skip"],
                "every_epochs": d["every_epochs"],
                "warmup_epochs": d["warmup_epochs"],
                "rescore": d["rescore"],
                "segment_s": d["segment_s"],
            }
    m = v.get("msrs")
    if m:
        for mode in m["modes"]:
            out[f"msrs-{mode}"] = {
                "variant": "msrs",
                "mode": mode,
                **{
                    k: m[k]
                    for k in (
                        "temperature",
                        "final_temperature",
                        "anneal_steps",
                        "init_density",
                        "lam",
                        "score_lr",
                        "check_every",
                        "flip_threshold",
                        "patience",
                        "min_steps",
                    )
                },
            }
    return out


def time_reference(spec: dict) -> str | None:
    """The run whose measured training time a run's ``time`` budget equals (the dense run)."""
    return "dense" if spec.get("budget") == "time" else None


def config_runs(config: dict) -> dict[str, dict]:
    """The runs of a whole config (none without a `speech` section)."""
    return runs(config["speech"]) if "speech" in config else {}


def seeds(config: dict) -> list[int]:
    return [int(s) for s in config["speech"]["seeds"]] if "speech" in config else []


def corpus_dir(config: dict) -> str:
    return f"{RESULTS}/speech/{config['speech']['corpus']['name']}"


def run_files(config: dict, name: str, runs=None) -> list[str]:
    """One file (``metrics.csv``, ``hypotheses.csv``, ``curve.csv``) of every run (default: all) and seed."""
    return [
        f"{corpus_dir(config)}/runs/{r}/s{s}/{name}" for r in (runs if runs is not None else config_runs(config)) for s in seeds(config)
    ]


ITEMS = f"{RESULTS}/speech/items.csv"  # per-utterance errors of every run and seed (compbench.speech.summary)


def targets(config: dict) -> list[str]:
    return [f"{RESULTS}/tables/speech.csv", f"{RESULTS}/tables/speech-summary.csv"] + [
        f"{RESULTS}/figures/speech-{k}.png" for k in ("lrsms", "ddp", "msrs")
    ]

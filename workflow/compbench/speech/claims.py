"""The speech line's paper claims (LR-SMS, DDP-ASR, MSRS), decided on this run's
speech table and per-utterance errors (compbench.verdicts). Each compares a run's test
WER with another run trained on the same data for the same epochs: the difference is
the mean over seeds, its 95 % interval t over >= 3 seeds, else a paired bootstrap over
the test utterances (compbench.speech.summary)."""

from __future__ import annotations

from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable

PARITY = "parity with the dense model's WER (no number taken from the paper here)"


def _mean(t, run: str, metric: str):
    v = t[(t["run"] == run) & (t["metric"] == metric)]["value"]
    return sum(float(x) for x in v) / len(v) if len(v) else None


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _compare(read, path: str, items_path: str, better: str, worse: str) -> tuple:
    """(mean WER of ``better``, of ``worse``, Summary of WER(worse) − WER(better)) on the test utterances."""
    from compbench.speech import summary

    t = read(path)
    d = summary.difference(read(items_path), worse, better, "test")
    return _mean(t, better, "test_wer"), _mean(t, worse, "test_wer"), d


def wer_parity(read, path: str, items_path: str, candidates: list[str], what: str) -> Outcome:
    """Dense test WER minus the run's (>= 0: parity or better); of several candidate
    runs, the one with the fewest effective parameters (the claim's strongest form)."""
    t = read(path)
    present = [r for r in candidates if _mean(t, r, "test_wer") is not None]
    run = min(present, key=lambda r: _mean(t, r, "params_effective") or 0) if present else None
    if _mean(t, "dense", "test_wer") is None or run is None:
        return untestable(f"the speech table lacks the dense run or {run or what}")
    wer, dense, d = _compare(read, path, items_path, run, "dense")
    params = ""
    pd_, pr = _mean(t, "dense", "params_effective"), _mean(t, run, "params_effective")
    if pd_ and pr and pr < pd_:
        params = f", {pd_ / pr:.2f}x fewer effective parameters"
    return Outcome(
        numbers=f"test WER dense {dense:.1%} vs {run} {wer:.1%}{params} ({_seeds(d.n_seeds)})",
        diff=d.mean,
        interval=d.interval,
        strict=False,
        how=d.method,
    )


def svd_beats_random(read, path: str, items_path: str, setting: str) -> Outcome:
    """Random-init test WER minus SVD-init's at the same ranks (> 0: SVD initialisation is better)."""
    svd, rnd = f"lrsms-{setting}-svd", f"lrsms-{setting}-random"
    t = read(path)
    if _mean(t, svd, "test_wer") is None or _mean(t, rnd, "test_wer") is None:
        return untestable(f"the speech table lacks {svd} or {rnd}")
    w_svd, w_rnd, d = _compare(read, path, items_path, svd, rnd)
    return Outcome(
        numbers=f"test WER {setting}: SVD init {w_svd:.1%} vs random init {w_rnd:.1%} ({_seeds(d.n_seeds)})",
        diff=d.mean,
        interval=d.interval,
        how=d.method,
    )


def claims(config: dict) -> list[Claim]:
    from compbench.speech import grid

    sp = config["speech"]
    path, items = f"{RESULTS}/tables/speech.csv", grid.ITEMS
    names = grid.runs(sp)
    svd = [r for r, s in names.items() if s["variant"] == "lrsms" and s["init"] == "svd"]
    ddp = sorted((r for r, s in names.items() if s["variant"] == "ddp"), key=lambda r: abs(names[r]["fraction"] - 0.7))
    msrs = [r for r in names if r == "msrs-sparse"]
    source = "{paper} paper (LibriSpeech, Conformer-CTC); config/paper_speech.yaml"
    cases = [
        (
            "lrsms-parity",
            "LR-SMS",
            "A Conformer with SVD-initialised low-rank linears (the run with the fewest parameters) reaches the dense WER",
            svd,
            "speech-lrsms.png",
        ),
        (
            "ddp-parity",
            "DDP-ASR",
            "Training on a dynamically pruned ~70 % of the data reaches the full-data WER",
            ddp[:1],
            "speech-ddp.png",
        ),
        (
            "msrs-parity",
            "MSRS",
            "Training with a stabilised sparse mask, continuing sparse, reaches the dense WER",
            msrs,
            "speech-msrs.png",
        ),
    ]
    out = [
        Claim(
            id=f"speech/{cid}",
            line="speech",
            paper=paper,
            statement=statement,
            anchor=PARITY,
            source=source.format(paper=paper),
            link=f"{RESULTS}/figures/{figure}",
            inputs=(path, items),
            evaluate=lambda read, runs=tuple(runs), paper=paper: wer_parity(read, path, items, list(runs), f"a {paper} run"),
        )
        for cid, paper, statement, runs, figure in cases
    ]
    lr = sp.get("variants", {}).get("lrsms") or {}
    if lr.get("random_init"):
        setting = lr["random_init"][0]
        out.append(
            Claim(
                id=f"speech/lrsms-svd-beats-random/{setting}",
                line="speech",
                paper="LR-SMS",
                statement=f"SVD initialisation of the low-rank factors gives a lower WER than random initialisation at the same ranks ({setting})",
                anchor="SVD initialisation is the paper's argument for its factorisation (no number taken from the paper here)",
                source=source.format(paper="LR-SMS"),
                link=f"{RESULTS}/figures/speech-lrsms.png",
                inputs=(path, items),
                evaluate=lambda read, setting=setting: svd_beats_random(read, path, items, setting),
            )
        )
    return out

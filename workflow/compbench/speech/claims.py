"""The speech line's paper claims (LR-SMS, DDP-ASR, MSRS), decided on this run's
speech table (compbench.verdicts). Each compares a run's test WER with the dense
model trained on the same data for the same epochs."""

from __future__ import annotations

from compbench.lines import RESULTS
from compbench.verdicts import Claim, Outcome, untestable

PARITY = "parity with the dense model's WER (no number taken from the paper here)"


def _metric(t, run: str, metric: str):
    v = t[(t["run"] == run) & (t["metric"] == metric)]["value"]
    return float(v.iloc[0]) if len(v) else None


def wer_parity(read, path: str, candidates: list[str], what: str) -> Outcome:
    """Dense test WER minus the run's (>= 0: parity or better); of several candidate
    runs, the one with the fewest effective parameters (the claim's strongest form)."""
    t = read(path)
    dense = _metric(t, "dense", "test_wer")
    present = [r for r in candidates if _metric(t, r, "test_wer") is not None]
    run = min(present, key=lambda r: _metric(t, r, "params_effective") or 0) if present else None
    wer = _metric(t, run, "test_wer") if run else None
    if dense is None or wer is None:
        return untestable(f"the speech table lacks the dense run or {run or what}")
    params = ""
    pd_, pr = _metric(t, "dense", "params_effective"), _metric(t, run, "params_effective")
    if pd_ and pr and pr < pd_:
        params = f", {pd_ / pr:.2f}x fewer effective parameters"
    return Outcome(numbers=f"test WER dense {dense:.1%} vs {run} {wer:.1%}{params}", diff=dense - wer, strict=False)


def claims(config: dict) -> list[Claim]:
    from compbench.speech import grid

    sp = config["speech"]
    path = f"{RESULTS}/tables/speech.csv"
    names = grid.runs(sp)
    svd = [r for r, s in names.items() if s["variant"] == "lrsms" and s["init"] == "svd"]
    ddp = sorted((r for r, s in names.items() if s["variant"] == "ddp"), key=lambda r: abs(names[r]["fraction"] - 0.7))
    msrs = [r for r in names if r == "msrs-sparse"]
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
    return [
        Claim(
            id=f"speech/{cid}",
            line="speech",
            paper=paper,
            statement=statement,
            anchor=PARITY,
            source=f"{paper} paper (LibriSpeech, Conformer-CTC); config/paper_speech.yaml",
            link=f"{RESULTS}/figures/{figure}",
            inputs=(path,),
            evaluate=lambda read, runs=tuple(runs), paper=paper: wer_parity(read, path, list(runs), f"a {paper} run"),
        )
        for cid, paper, statement, runs, figure in cases
    ]

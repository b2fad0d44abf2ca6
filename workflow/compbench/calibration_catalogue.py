"""The catalogue of calibration sources and formats (no torch, no hub): what
the config check and the rules need to name and validate calibration sets.
Building the sets: :mod:`compbench.calibration_data`."""

from __future__ import annotations

import re

FORMATS = ("raw", "zero", "single", "concat", "cot", "icl<k>")

# name -> (category, Hugging Face id and config, has rationales)
CATALOGUE: dict[str, tuple[str, str, bool]] = {
    "tiny": ("pretraining", "offline: the tiny corpus (wiki + lee)", False),
    "c4": ("pretraining", "allenai/c4 (en, train shard 0)", False),
    "pile": ("pretraining", "monology/pile-uncopyrighted", False),
    "oscar": ("pretraining", "oscar (unshuffled_deduplicated_en)", False),
    "redpajama": ("pretraining", "togethercomputer/RedPajama-Data-V2 (sample)", False),
    "wikitext2": ("pretraining", "wikitext (wikitext-2-raw-v1)", False),
    "arith": ("arithmetic", "offline: generated additions (compbench.tasks)", True),
    "gsm8k": ("arithmetic", "openai/gsm8k (main)", True),
    "svamp": ("arithmetic", "ChilleD/SVAMP", True),
    "mawps": ("arithmetic", "MU-NLPC/Calc-mawps", True),
    "esnli": ("nli", "esnli", True),
    "anli_r1": ("nli", "facebook/anli (train_r1)", True),
    "anli_r3": ("nli", "facebook/anli (train_r3)", True),
    "facts": ("commonsense", "offline: generated template facts (compbench.tasks)", True),
    "continuation": ("commonsense", "offline: generated sentence continuations (compbench.tasks)", True),
    "commonsense_qa": ("commonsense", "tau/commonsense_qa", False),
    "race": ("commonsense", "ehovy/race (all)", False),
    "winogrande": ("commonsense", "allenai/winogrande (winogrande_xl)", False),
    "random": ("control", "offline: random strings", False),
}


def parse_format(fmt: str) -> tuple[str, int | None]:
    m = re.fullmatch(r"icl(\d+)", fmt)
    if m:
        k = int(m.group(1))
        if k < 1:
            raise ValueError(f"calibration format {fmt!r}: an ICL sample needs k ≥ 1 examples")
        return "icl", k
    if fmt in ("raw", "zero", "single", "concat", "cot"):
        return fmt, None
    raise ValueError(f"unknown calibration format {fmt!r}; allowed: {', '.join(FORMATS)}")


def set_name(source: str, fmt: str = "raw") -> str:
    """The name of a calibration set's source part: ``tiny`` (raw) or ``arith-cot``."""
    return source if fmt == "raw" else f"{source}-{fmt}"


def parse_name(name: str) -> tuple[str, str]:
    source, _, fmt = name.partition("-")
    return source, fmt or "raw"


def check(source: str, fmt: str) -> None:
    """Fail fast on a source/format pair that cannot be built (no hub access)."""
    if source not in CATALOGUE:
        raise ValueError(f"unknown calibration source {source!r}; allowed: {', '.join(CATALOGUE)}")
    kind, _ = parse_format(fmt)
    downstream = CATALOGUE[source][0] not in ("pretraining", "control")
    if downstream and kind == "raw":
        raise ValueError(f"calibration source {source!r} is a downstream data set: use a format ({', '.join(FORMATS[1:])}), not 'raw'")
    if not downstream and kind != "raw":
        raise ValueError(f"calibration source {source!r} is plain text: its only format is 'raw', not {fmt!r}")
    if kind == "cot" and not CATALOGUE[source][2]:
        with_r = [s for s, c in CATALOGUE.items() if c[2]]
        raise ValueError(
            f"calibration format 'cot' needs rationales, which source {source!r} does not have; sources with rationales: {', '.join(with_r)}"
        )

"""Cross-field checks of the `calibration_study` section (after schema validation)."""

from __future__ import annotations

from compbench.calibration_catalogue import CATALOGUE, parse_format
from compbench.calibration_catalogue import check as check_set
from compbench.calibration_study.grid import cells
from compbench.config import ConfigError, check_seq_len


def validate(study: dict) -> None:
    """Fail fast (ValueError naming the key) on a grid that cannot be built."""
    for g, where in [(study, "calibration_study")] + [
        (sw, f"calibration_study.sweeps[{i}]") for i, sw in enumerate(study.get("sweeps", []))
    ]:
        for s in g.get("sources", []):
            if s not in CATALOGUE:
                raise ValueError(f"{where}.sources: unknown calibration source {s!r}; allowed: {', '.join(CATALOGUE)}")
        for f in g.get("formats", []):
            try:
                if parse_format(f)[0] == "raw":
                    raise ValueError("'raw' is implied for plain-text sources")
            except ValueError as e:
                raise ValueError(f"{where}.formats: {f!r}: {e}") from None
    cs = cells(study)
    if not cs:
        raise ValueError("calibration_study: the grid is empty (no source takes any of the formats)")
    for c in cs:
        check_set(c["source"], c["format"])


def check(config: dict) -> None:
    st = config["calibration_study"]
    from compbench.tasks import TASKS

    try:
        validate(st)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if "tiny" in [s for g in [st] + st.get("sweeps", []) for s in g.get("sources", [])] and "corpus" not in config:
        raise ConfigError("calibration_study.sources contains 'tiny', which needs the `corpus` section")
    for i, g in enumerate([st] + st.get("sweeps", [])):
        for n in g.get("seq_len", []):
            check_seq_len(config, "calibration_study.seq_len" if i == 0 else f"calibration_study.sweeps[{i - 1}].seq_len", n)
    for t in st.get("lm_eval", {}).get("tasks", []):
        if t.startswith("cb_") and t[3:] not in TASKS:
            raise ConfigError(
                f"calibration_study.lm_eval.tasks: unknown generated task {t!r}; allowed: {', '.join('cb_' + n for n in TASKS.names())}"
            )

"""Cross-field checks of the `compose` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError, check_decimals, check_seq_len


def check(config: dict) -> None:
    c = config["compose"]
    from compbench.compose.pipeline import resolve

    ivs = c["interventions"]
    cats = {}
    for iid, spec in ivs.items():
        if "__" in iid or not iid.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError(f"compose.interventions: id {iid!r} must be letters, digits, '-', '_' or '.', without '__'")
        try:
            step = resolve(iid, ivs)
        except (KeyError, ValueError) as e:
            raise ConfigError(f"compose.interventions.{iid}: {e.args[0]}") from None
        unknown = sorted(set(step.params) - set(step.intervention.params_allowed()))
        if unknown:
            raise ConfigError(
                f"compose.interventions.{iid}: unknown setting(s) {unknown} of method {spec['method']!r}; "
                f"allowed: {', '.join(step.intervention.params_allowed())}"
            )
        cats[iid] = step.category
    if len(set(cats.values())) < 2:
        raise ConfigError(
            f"compose.interventions: the ids {list(ivs)} are all of category {set(cats.values())}; "
            "composing needs at least two categories (edit, compress, unlearn)"
        )
    sw = c.get("sweep")
    if sw:
        bad = [e for e in sw["edits"] if cats.get(e) != "edit"]
        if bad:
            raise ConfigError(
                f"compose.sweep.edits names {bad}, not edit interventions; allowed: {', '.join(i for i, k in cats.items() if k == 'edit')}"
            )
        if cats.get(sw["compressor"]) != "compress" or "sparsity" not in ivs[sw["compressor"]]:
            raise ConfigError(
                f"compose.sweep.compressor={sw['compressor']!r} must be a pruning intervention with a sparsity; "
                f"allowed: {', '.join(i for i in ivs if cats[i] == 'compress' and 'sparsity' in ivs[i])}"
            )
        check_decimals("compose.sweep.sparsities", sw["sparsities"])
    check_seq_len(config, "compose.calibration.seq_len", c.get("calibration", {}).get("seq_len"))
    check_seq_len(config, "compose.eval.seq_len", c.get("eval", {}).get("seq_len"))
    if c.get("data", {}).get("source", "world") == "world":
        if "knowledge" not in config.get("corpus", {}).get("sources", []):
            raise ConfigError("compose.data.source='world' needs the knowledge world in the corpus: add 'knowledge' to corpus.sources")

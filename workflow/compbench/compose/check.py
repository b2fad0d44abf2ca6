"""Cross-field checks of the `compose` config section (after schema validation)."""

from __future__ import annotations

from compbench.config import ConfigError, check_decimals, check_seq_len


def check(config: dict) -> None:
    c = config["compose"]
    from compbench.compose.interventions.catalogue import catalogue  # torch-free: this runs at every DAG build

    known = catalogue()
    allowed = ", ".join(sorted(known))
    ivs = c["interventions"]
    cats = {}
    for iid, spec in ivs.items():
        if "__" in iid or not iid.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError(f"compose.interventions: id {iid!r} must be letters, digits, '-', '_' or '.', without '__'")
        method = spec.get("method")
        if method is None:
            raise ConfigError(f"compose.interventions.{iid}: compose.interventions.{iid} names no method; allowed: {allowed}")
        if method not in known:
            raise ConfigError(f"compose.interventions.{iid}: unknown intervention {method!r}; allowed: {allowed}")
        entry = known[method]
        unknown = sorted(set(spec) - {"method"} - set(entry.params))
        if unknown:
            raise ConfigError(
                f"compose.interventions.{iid}: unknown setting(s) {unknown} of method {spec['method']!r}; "
                f"allowed: {', '.join(entry.params)}"
            )
        cats[iid] = entry.category
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

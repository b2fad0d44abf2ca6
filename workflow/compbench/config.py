"""Loading and checking a config, before any job runs.

The Snakefile calls :func:`prepare` first: each config file is read again with a
YAML loader that refuses duplicate keys (naming the file and the key), the
config is validated against ``config/schema.yaml`` with its defaults filled in
(the same Draft 2020-12 validation with defaults as ``snakemake.utils.validate``,
but a refusal is one short message naming the key path, the bad value and what
is allowed, not the whole schema), then :func:`check` runs the checks the schema
cannot express: those of the shared sections here, each research line's own in
``compbench/<line>/check.py`` (through :func:`compbench.lines.check`).

``python -m compbench.config FILE...`` checks config files the way Snakemake
cannot (it refuses a file that is a list, a scalar, empty or invalid YAML
without naming it, and takes the last of two equal keys silently);
``workflow/run.sh`` runs it on every ``--configfile`` before Snakemake starts.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

from compbench import sources

# A Hugging Face hub id: `name` or `owner/name`, each part letters, digits, '-', '_', '.'
# (huggingface_hub.utils.validate_repo_id's rule, without importing it here).
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class ConfigError(ValueError):
    pass


# ------------------------------------------------------------------ config files
def _strict_loader():
    import yaml

    class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        pass

    def mapping(loader, node):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"line {line}: key {key!r} is given twice (first at line {seen[key]}); "
                    "a mapping allows each key once (the last one would silently win)"
                )
            seen[key] = line
        return loader.construct_mapping(node, deep=True)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


def read_file(path: str | Path) -> dict:
    """A config file as a dict; ConfigError naming the file if it is not one."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot be read ({e.strerror})") from None
    try:
        data = yaml.load(text, Loader=_strict_loader())
    except ConfigError as e:
        raise ConfigError(f"config file {path}, {e}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f", line {where.line + 1} column {where.column + 1}" if where else ""
        raise ConfigError(f"config file {path}{at}: not valid YAML ({getattr(e, 'problem', None) or e}); allowed: a YAML mapping") from None
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__} ({_short(data)})"
        raise ConfigError(f"config file {path}: is {what}; allowed: a YAML mapping of config sections (models:, resources:, ...)")
    return data


def check_files(paths) -> None:
    for p in paths:
        read_file(p)


# ------------------------------------------------------------------ the schema
def _short(value, n: int = 120) -> str:
    s = repr(value)
    return s if len(s) <= n else s[: n - 3] + "..."


def key_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _allowed(err) -> str:
    """What the failing schema keyword allows, in words."""
    v, kw = err.validator_value, err.validator
    words = {
        "enum": lambda: ", ".join(map(str, v)),
        "const": lambda: repr(v),
        "type": lambda: f"a value of type {v if isinstance(v, str) else ' or '.join(v)}",
        "minimum": lambda: f">= {v}",
        "maximum": lambda: f"<= {v}",
        "exclusiveMinimum": lambda: f"> {v}",
        "exclusiveMaximum": lambda: f"< {v}",
        "minItems": lambda: f"at least {v} item(s)",
        "maxItems": lambda: f"at most {v} item(s)",
        "minLength": lambda: f"at least {v} character(s)",
        "minProperties": lambda: f"at least {v} entr{'y' if v == 1 else 'ies'}",
        "pattern": lambda: f"text matching {v}",
        "uniqueItems": lambda: "distinct items",
        "required": lambda: "the keys " + ", ".join(v),
    }
    if kw in ("anyOf", "oneOf") and err.context:
        alternatives = [_allowed(c) for c in err.context if not c.relative_path]
        return " or ".join(dict.fromkeys(alternatives)) if alternatives else f"see `{kw}` in config/schema.yaml"
    if kw == "propertyNames":
        return f"names matching {v.get('pattern', v)}"
    if kw == "additionalProperties" and v is False:
        return "the keys " + ", ".join(sorted(err.schema.get("properties", {})))
    return words[kw]() if kw in words else f"see `{kw}` in config/schema.yaml"


def _message(err) -> str:
    path = list(err.absolute_path)
    if err.validator == "additionalProperties" and err.validator_value is False:
        unknown = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return (
            f"{key_path(path + [unknown[0]]) if unknown else key_path(path)}: unknown key {', '.join(map(repr, unknown))} "
            f"in {key_path(path)}; allowed: {_allowed(err)}"
        )
    if err.validator == "propertyNames":
        return f"{key_path(path)}: key name {err.instance!r} is not allowed ({err.message}); allowed: {_allowed(err)}"
    return f"{key_path(path)}={_short(err.instance)}: {err.message}; allowed: {_allowed(err)}"


def _validator(schema: dict):
    """Draft 2020-12 with defaults filled in while validating (as snakemake.utils.validate
    with set_default=True, itself from the jsonschema FAQ)."""
    from jsonschema import Draft202012Validator, validators

    props = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(key, _copy(sub["default"]))
        yield from props(validator, properties, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)


def _copy(value):
    import copy

    return copy.deepcopy(value)


@functools.lru_cache(maxsize=4)
def _schema(path: str, mtime_ns: int) -> dict:
    import yaml

    return yaml.load(Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def validate(config: dict, schema_path: str | Path) -> None:
    """Validate ``config`` in place (defaults filled); ConfigError with one short message."""
    from jsonschema.exceptions import best_match

    err = best_match(_validator(_schema(str(schema_path), Path(schema_path).stat().st_mtime_ns)).iter_errors(config))
    if err is not None:
        raise ConfigError(_message(err))


def prepare(config: dict, schema_path: str | Path, files=()) -> dict:
    """What the Snakefile runs before anything else (see the module docstring)."""
    check_files(files)
    validate(config, schema_path)
    check(config)
    return config


# ------------------------------------------------------------------ cross-field checks
def positions(config: dict, model: str) -> int | None:
    """The positions a model of the config has, where the config says (the tiny model's
    tiny_model.seq_len; a hub model's max_seq_len cap); None when only its files know."""
    spec = config.get("models", {}).get(model, {})
    if spec.get("source") == "tiny":
        return config.get("tiny_model", {}).get("seq_len")
    return spec.get("max_seq_len")


def check_seq_len(config: dict, key: str, seq_len, models=None) -> None:
    """A window of ``seq_len`` tokens must fit every model it is cut for."""
    for m in models if models is not None else config.get("models", {}):
        n = positions(config, m)
        if seq_len is not None and n is not None and seq_len > n:
            where = "tiny_model.seq_len" if config["models"][m]["source"] == "tiny" else f"models.{m}.max_seq_len"
            raise ConfigError(f"{key}={seq_len} is longer than model {m!r} has positions ({where}={n}); allowed: <= {n}")


DECIMAL = re.compile(r"^0\.\d+$")  # a sparsity as it appears in variant and run names (the grids' wildcards)


def check_decimals(key: str, values) -> None:
    for v in values:
        if not DECIMAL.match(str(v)):
            raise ConfigError(f"{key}: {v!r} is written {str(v)!r} in a variant name; allowed: a decimal 0.<digits> such as 0.5")


def check(config: dict) -> None:
    resources = config.get("resources", {})
    for name, spec in config.get("models", {}).items():
        size = spec.get("size")
        if size not in resources:
            raise ConfigError(
                f"models.{name}.size={size!r} names no resource class; allowed: {', '.join(sorted(resources)) or '(none defined)'}"
            )
        problem = sources.check(name, spec, config)
        if problem:
            raise ConfigError(problem)
        if spec.get("source") == "hf" and not HUB_ID.match(spec.get("id", "")):
            raise ConfigError(
                f"models.{name}.id={spec.get('id')!r} is not a Hugging Face hub id; allowed: 'name' or 'owner/name' "
                "(letters, digits, '-', '_', '.'; no spaces)"
            )
    tm = config.get("tiny_model")
    if tm and tm["hidden_size"] % tm["num_heads"]:
        raise ConfigError(
            f"tiny_model.hidden_size={tm['hidden_size']} must be divisible by tiny_model.num_heads={tm['num_heads']}; "
            f"allowed num_heads: {', '.join(str(h) for h in range(1, tm['hidden_size'] + 1) if tm['hidden_size'] % h == 0)}"
        )
    from compbench.lines import CORPUS_DATASETS

    for ds in CORPUS_DATASETS:
        if ds in config.get("evaluation", {}).get("perplexity", {}).get("datasets", []) and "corpus" not in config:
            raise ConfigError(f"evaluation.perplexity.datasets contains {ds!r}, which needs the `corpus` section")
    for name, cls in resources.items():
        if cls.get("gpu_model") and cls.get("gpu", 0) < 1:
            raise ConfigError(
                f"resources.{name}.gpu_model={cls['gpu_model']!r} needs resources.{name}.gpu >= 1 (it is {cls.get('gpu', 0)})"
            )
    from compbench.lines import check as check_lines

    check_lines(config)


def main(argv=None) -> int:
    """``python -m compbench.config FILE...``: exit 1 with the message if a file is not a config mapping."""
    try:
        check_files(sys.argv[1:] if argv is None else argv)
    except ConfigError as e:
        print(f"compbench: bad config: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Loading, validating and digesting the pipeline configuration (JSON schema, one digest)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import yaml

from dpo_eval.core.errors import ConfigError

__all__ = ["ConfigError", "load_yaml", "validate_config", "load_config", "config_digest",
           "min_cell_warning", "MIN_CELL_FLOOR", "MIN_CELL_ADVISED"]

# Disclosure threshold (reports.min_cell): below the floor the schema refuses the configuration
# (its "minimum"; a test keeps the two equal); from the floor up to the advised value the run
# warns on the console and every report's legend says so.
MIN_CELL_FLOOR = 3
MIN_CELL_ADVISED = 5


def load_yaml(path: str | Path, what: str = "configuration") -> dict:
    """A YAML mapping from ``path``; a syntax error is reported with its line and column (as an
    editor shows them, counted from 1) instead of a bare parser message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: does not exist. What to do: check the path of the {what} "
                          "file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: is not UTF-8 text (byte {error.start}). What to do: save the "
                          f"{what} file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(filter(None, [error.context, error.problem]))
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}). What to do: correct the "
                          f"{what} file there (indent with spaces, not tabs; quote texts holding "
                          "': ' or starting with a special character)") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error}). What to do: correct the {what} "
                          "file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: is not a YAML mapping of keys to values. What to do: compare "
                          f"it with the bundled {what} file")
    return data


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = "" if where == "(top level)" else where + "."
        return (f"unknown key {', '.join(repr(prefix + k) for k in unknown)}; "
                f"allowed here: {', '.join(allowed)}")
    if error.validator == "required":
        return f"key '{where}': {error.message}"
    # A schema entry may explain why a value is refused and what to do ("x-message").
    why = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    return f"key '{where}': {error.message}" + (f": {why}" if why else "")


def validate_config(config: dict, schema_path: str | Path, source: str = "config") -> dict:
    """Check ``config`` against the schema; raise ConfigError listing every problem by key."""
    with open(schema_path, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_describe(error)}" for error in errors)
        raise ConfigError(f"{source} is not valid:\n{lines}\nWhat to do: correct these keys "
                          "(config/README.md documents every key and its values)")
    return config


def min_cell_warning(min_cell: int) -> str | None:
    """The console warning for a disclosure threshold below the advised one (None otherwise)."""
    if min_cell >= MIN_CELL_ADVISED:
        return None
    return (f"WARNING: reports.min_cell = {min_cell}: aggregates of {min_cell} to {MIN_CELL_ADVISED - 1} "
            f"people will be published, and every report says so in its legend. The usual threshold "
            f"is {MIN_CELL_ADVISED}; set reports.min_cell: {MIN_CELL_ADVISED} unless the data "
            "protection officer agreed to less.")


def load_config(path: str | Path, schema_path: str | Path) -> dict:
    return validate_config(load_yaml(path), schema_path, source=str(path))


# How a run is started, not what it computes: never part of a configuration digest.
RUN_SWITCHES = ("reproduce",)


def _without(config: dict, dotted_keys: tuple[str, ...]) -> dict:
    """``config`` without the keys named by their dotted paths (e.g. ``delivery.smtp``)."""
    kept = dict(config)
    nested: dict[str, list[str]] = {}
    for key in dotted_keys:
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, []).append(rest)
        else:
            kept.pop(head, None)
    for head, rests in nested.items():
        if isinstance(kept.get(head), dict):
            kept[head] = _without(kept[head], tuple(rests))
    return kept


def config_digest(config: dict, ignore: tuple[str, ...] = ()) -> str:
    """SHA-256 of the configuration as canonical JSON (keys sorted, UTF-8), without the run
    switches (``RUN_SWITCHES``) and the keys in ``ignore`` (dotted paths). The one digest of a
    configuration: the reports print it, the outbox records it (without how to send)."""
    digested = _without(config, RUN_SWITCHES + tuple(ignore))
    canonical = json.dumps(digested, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

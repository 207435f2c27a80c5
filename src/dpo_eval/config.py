"""Loading and validating the pipeline configuration against its JSON schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    """The configuration does not match the schema; the message names the key and the fix."""


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
    return f"key '{where}': {error.message}"


def validate_config(config: dict, schema_path: str | Path, source: str = "config") -> dict:
    """Check ``config`` against the schema; raise ConfigError listing every problem by key."""
    with open(schema_path, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_describe(error)}" for error in errors)
        raise ConfigError(f"{source} is not valid (see config/README.md):\n{lines}")
    return config


def load_config(path: str | Path, schema_path: str | Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    return validate_config(config, schema_path, source=str(path))

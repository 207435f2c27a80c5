"""The project a delivery command works on: its folder, found from any folder inside it, and
its configuration, validated against the pipeline's schema exactly as Snakemake does."""

from __future__ import annotations

from pathlib import Path

from dpo_eval.core.config import ConfigError, load_yaml, validate_config
from dpo_eval.delivery.errors import DeliveryError

CONFIG_SCHEMA = Path("workflow/schemas/config.schema.yaml")
DEFAULT_CONFIG = Path("config/config.yaml")
DEFAULT_MANIFEST = Path("results/outbox/manifest.csv")


def find_project(start: str | Path | None = None) -> Path:
    """The project directory: the nearest of ``start`` (default: the current directory) and its
    parents that holds a Snakefile and config/config.yaml, so that the ledger and the outbox are
    the same whatever folder of the project a command is run from."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Snakefile").is_file() and (folder / DEFAULT_CONFIG).is_file():
            return folder
    raise DeliveryError(f"{here} is not inside a dpo_eval project (no Snakefile and config/config.yaml "
                        "in it or its parents); run the command in the project or give --project")


def load_delivery_config(project: Path, config_path: Path | None = None) -> dict:
    """The configuration, validated against the pipeline's schema exactly as Snakemake does."""
    path = config_path if config_path is not None else project / DEFAULT_CONFIG
    try:
        return validate_config(load_yaml(path), project / CONFIG_SCHEMA, source=str(path))
    except ConfigError as exc:
        raise DeliveryError(str(exc)) from exc


def in_project(project: Path, path: str | Path) -> Path:
    """``path`` as given, or relative to the project directory when it is relative."""
    path = Path(path)
    return path if path.is_absolute() else project / path


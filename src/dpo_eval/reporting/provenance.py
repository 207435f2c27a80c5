"""Provenance of a report: digests of the code, the configuration and the lock file, the
versions of the libraries, and the checksums of the inputs."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from dpo_eval import __version__
from dpo_eval.core.config import config_digest
from dpo_eval.core.io import sha256_file

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def package_files(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Every module and data file of the package, sorted: what the code digest covers, and what
    the evaluation report's rule declares as inputs (workflow/rules/common.smk)."""
    return sorted(path for path in package_dir.rglob("*")
                  if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts)


def code_digest() -> str:
    """SHA-256 over the package's source files: identifies the code without needing git."""
    digest = hashlib.sha256()
    for path in package_files():
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def provenance(config: dict, manifest: pd.DataFrame, lock_file: str | Path) -> dict:
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in
                         ("pandas", "numpy", "scipy", "statsmodels", "matplotlib", "weasyprint", "jinja2"))
    python = ".".join(platform.python_version_tuple()[:2])
    return {
        "code_version": __version__,
        "code_sha256": code_digest(),
        "config_sha256": config_digest(config),
        # The configuration the tables were computed with (dpo_eval.core.settings.computed_with).
        "settings": [{"key": key, "value": value if isinstance(value, str)
                      else json.dumps(value, ensure_ascii=False)}
                     for key, value in config.get("computed_with", {}).items()],
        "lock_sha256": sha256_file(lock_file),
        "software": f"Python {python}; {versions}",
        "inputs": manifest.to_dict(orient="records"),
    }

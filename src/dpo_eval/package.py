"""The reproduction package: pseudonymised analysis data, configuration, code, lock file and
instructions, from which a reviewer rebuilds every table and the evaluation reports."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from dpo_eval.io import sha256_file, write_outputs

FIXED_TIME = (2025, 1, 1, 0, 0, 0)
CODE_ITEMS = ("Snakefile", "workflow", "src", "config", "reports", "requirements.lock", "requirements.in",
              "environment.yml", "pyproject.toml", "Makefile", "README.md")
INSTRUCTIONS = """# Reproducing the evaluation from this package

This package holds the pseudonymised analysis data (results/clean/), the configuration, the
code, the locked dependencies and the checksums of the published tables and evaluation reports.
It holds no raw survey export and no personal data.

On a machine with Python 3.11 (pip and venv), in the folder where this file is:

    make setup
    .venv/bin/snakemake --cores 4 --config reproduce=True
    sha256sum -c CHECKSUMS.sha256

The second command rebuilds every table under results/tables/ and results/reports/evaluation.*.pdf
from the pseudonymised data; the third checks that they equal, byte for byte, the published ones.
With conda: `conda env create -f environment.yml`, `conda activate dpo-eval`, then the last two
commands with `snakemake` in place of `.venv/bin/snakemake`.
"""


def _files(root: Path, item: str) -> list[Path]:
    path = root / item
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                      and not p.name.endswith(".egg-info") and ".egg-info" not in str(p))
    return [path]


def build_package(root: str | Path, clean_files: list[str], published: list[str], output: str | Path) -> None:
    """A zip with fixed timestamps and permissions, entries in sorted order (byte-stable)."""
    root = Path(root)
    entries: dict[str, bytes] = {}
    for item in CODE_ITEMS:
        for path in _files(root, item):
            entries[path.relative_to(root).as_posix()] = path.read_bytes()
    for path in clean_files:
        entries[Path(path).as_posix()] = Path(path).read_bytes()
    entries["REPRODUCE.md"] = INSTRUCTIONS.encode("utf-8")
    entries["CHECKSUMS.sha256"] = "".join(f"{sha256_file(p)}  {Path(p).as_posix()}\n"
                                          for p in sorted(published)).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(f"dpo_eval_reproduction/{name}", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name])
    write_outputs({output: buffer.getvalue()})

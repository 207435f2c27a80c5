"""`dpo-eval new DIR`: a fresh study folder from the bundled template.

A study folder is a project of its own: the template's configuration, an empty ``data/raw/``, a
README for the study, and a copy of the pipeline it was created with (``Snakefile``,
``workflow/``, ``reports/``, ``src/``, the lock file), so that ``snakemake`` runs in it and its
results can be rebuilt later with the very code that made them.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from dpo_eval.core.errors import UserError

TEMPLATE = Path(__file__).with_name("template")
# What of the pipeline a study folder carries (the same set as a reproduction package's code).
PIPELINE_ITEMS = ("Snakefile", "workflow", "reports", "src", "requirements.lock", "requirements.in",
                  "pyproject.toml", "environment.yml", "Makefile", ".gitignore")
# The configuration documentation, and the settings of the simulation and power workflows.
CONFIG_DOCS = ("README.md", "power.yaml", "simulation.yaml")


def is_pipeline(folder: Path) -> bool:
    return (folder / "Snakefile").is_file() and (folder / "workflow" / "rules").is_dir() \
        and (folder / "src" / "dpo_eval").is_dir()


def pipeline_source(start: Path | None = None) -> Path:
    """The pipeline to copy: the project containing ``start`` (default: the current directory),
    else the checkout this package is installed from (`pip install -e .` in a clone)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_pipeline(folder):
            return folder
    checkout = Path(__file__).resolve().parents[3]
    if is_pipeline(checkout):
        return checkout
    raise UserError("the pipeline's files (Snakefile, workflow/, src/) were found neither around "
                    f"{here} nor next to the installed package. What to do: run the command in a "
                    "clone of the dpo_eval repository (installed with `make setup` or "
                    "`pip install -e .`)")


def create_study(target: Path, source: Path) -> list[Path]:
    """Write the study folder ``target`` (which must not exist or be empty); returns what it
    wrote, top level only."""
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} exists and is not empty. What to do: give a new folder name")
    if target.resolve().is_relative_to(source.resolve() / "src"):
        raise UserError(f"{target} lies inside the pipeline's source code. What to do: choose "
                        "another place")
    target.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in PIPELINE_ITEMS:
        item = source / name
        if item.is_dir():
            shutil.copytree(item, target / name, ignore=ignore)
        elif item.is_file():
            shutil.copy2(item, target / name)
    (target / "config").mkdir()
    for name in CONFIG_DOCS:
        if (source / "config" / name).is_file():
            shutil.copy2(source / "config" / name, target / "config" / name)
    shutil.copy2(TEMPLATE / "config.yaml", target / "config" / "config.yaml")
    (target / "data" / "raw").mkdir(parents=True)
    from dpo_eval import __version__

    readme = (TEMPLATE / "README.md").read_text(encoding="utf-8")
    (target / "README.md").write_text(
        readme.replace("{title}", target.name).replace("{version}", __version__), encoding="utf-8")
    return sorted(target.iterdir())


def run(args: argparse.Namespace) -> int:
    target = Path(args.directory)
    source = pipeline_source()
    create_study(target, source)
    print(f"created the study folder {target} (pipeline from {source})\n"
          f"next: copy your exports and the institutions registry into {target / 'data' / 'raw'}, "
          f"then in {target}: dpo-eval draft-codebook data/raw/*")
    return 0


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "new", help="create a study folder: configuration template, empty data/raw, README",
        description="Create a study folder from the bundled template: config/config.yaml with "
                    "TODOs, an empty data/raw/ for the exports, a README for the study and a copy "
                    "of this pipeline (run `snakemake` in the folder).")
    parser.add_argument("directory", metavar="DIR", help="the folder to create (new or empty)")
    parser.set_defaults(run=run)

"""`dpo-eval check`: everything the DAG build and the ingest steps would say about the data and
the configuration, every problem at once, without running the pipeline.

The checks call what the pipeline calls, so that a problem reads exactly as the pipeline would
print it: the schema validation and the codebook loader of the DAG build, the registry and
recipients readers, the survey readers on every export, the ingest steps of
`workflow/scripts/ingest.py` and `ingest_needs.py` (writing into a temporary folder that is then
deleted, so that nothing under results/ changes), and finally Snakemake's dry run. A stage
whose inputs already failed is skipped, so that one problem is not reported twice.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dpo_eval.cli import add_project_option
from dpo_eval.core.errors import InputErrors, UserError

CONFIG = Path("config/config.yaml")
SCHEMA = Path("workflow/schemas/config.schema.yaml")
INGEST_OUTPUTS = ("responses", "respondents", "flow_waves", "match_audit", "duplicates",
                  "invalid_values", "institutions", "pseudonymisation")


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def attempt(self, stage, *args):
        """Run one stage; a user error is recorded (each problem of a collection on its own)
        and the stage's result is None."""
        try:
            return stage(*args)
        except InputErrors as errors:
            self.problems += [str(error) for error in errors.errors]
        except UserError as error:
            self.problems.append(str(error))
        return None


class _Collect(logging.Handler):
    def __init__(self, report: Report):
        super().__init__(logging.WARNING)
        self.report = report

    def emit(self, record: logging.LogRecord) -> None:
        self.report.warnings.append(record.getMessage())


# The sections of config/config.yaml the ingest steps read: when they are valid, the data are
# checked even if another section (say, analysis.domains still naming a drafted domain) is not.
INGEST_SECTIONS = ("registry", "codebook", "waves", "needs", "cleaning", "pseudonymisation")


def _load_config(report: Report) -> tuple[dict | None, bool]:
    """The configuration, and whether the sections ingest reads are valid (the whole file is
    validated and reported as the DAG build does)."""
    import jsonschema
    import yaml

    from dpo_eval.core.config import load_yaml, validate_config

    config = report.attempt(load_yaml, CONFIG)
    if config is None:
        return None, False
    if report.attempt(validate_config, config, SCHEMA, str(CONFIG)) is not None:
        return config, True
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    ingest_part = {**schema, "additionalProperties": True,
                   "required": [k for k in schema["required"] if k in INGEST_SECTIONS],
                   "properties": {k: v for k, v in schema["properties"].items() if k in INGEST_SECTIONS}}
    return config, jsonschema.Draft202012Validator(ingest_part).is_valid(config)


def _exports(config: dict) -> list[tuple[str, str | None]]:
    sources = [*(config.get("waves") or {}).values(), config.get("needs") or {}]
    return [(f, source.get("sheet")) for source in sources if isinstance(source, dict)
            for f in source.get("files") or []]


def _read_all(report: Report, config: dict) -> bool:
    from dpo_eval.core.readers import read_export

    before = len(report.problems)
    for path, sheet in _exports(config):
        report.attempt(read_export, path, sheet)
    return len(report.problems) == before


@contextlib.contextmanager
def _secret_for_check(report: Report, settings, needs_files: list[str], registry: str):
    """The pipeline's secret check, reported once; without a usable secret the data are still
    checked, keyed with a random secret that lives only in this process (the keyed tables go to
    a temporary folder that is deleted)."""
    from dpo_eval.ingest.pseudonymise import load_secret

    exports = [f for wave in settings.waves.values() for f in wave["files"]] + list(needs_files)
    problems = len(report.problems)
    report.attempt(load_secret, settings.pseudonymisation, "results", Path.cwd(),
                   [*exports, registry])
    variable = settings.pseudonymisation["secret_env"]
    saved = os.environ.get(variable)
    if len(report.problems) > problems:
        os.environ[variable] = secrets.token_hex(32)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = saved


def _ingest(report: Report, config: dict, folder: Path) -> dict | None:
    from dpo_eval.core.settings import IngestSettings, NeedsIngestSettings
    from dpo_eval.steps import ingest_rules

    outputs = {name: folder / f"{name}.{'json' if name == 'pseudonymisation' else 'csv'}"
               for name in INGEST_OUTPUTS}
    needs = {"needs": folder / "needs.csv", "needs_formats": folder / "needs_formats.csv"}
    settings = IngestSettings.from_params(IngestSettings.from_config(config).as_params())
    needs_settings = NeedsIngestSettings.from_params(NeedsIngestSettings.from_config(config).as_params())
    with _secret_for_check(report, settings, needs_settings.needs["files"], config["registry"]):
        report.attempt(ingest_rules.ingest, settings, config["registry"], config["codebook"], outputs,
                       "results", Path.cwd())
        report.attempt(ingest_rules.ingest_needs, needs_settings, config["registry"],
                       config["codebook"], needs, "results", Path.cwd())
    done = outputs["responses"].exists() and needs["needs"].exists()
    return {**outputs, **needs} if done else None


def _dry_run(report: Report) -> int | None:
    """Snakemake's own DAG build (config, codebook, recipients, every input file); the number
    of jobs a run would execute."""
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake)] if snakemake.exists() else [sys.executable, "-m", "snakemake"]
    result = subprocess.run([*command, "-n", "--cores", "1"], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"})
    output = result.stdout + result.stderr
    if result.returncode != 0:
        errors = [line for line in output.splitlines() if line.strip()]
        shown = [line for line in errors if line.startswith(("ERROR:", "  -", "Error", "MissingInput"))]
        report.problems.append("the DAG build (snakemake -n) failed:\n" + "\n".join(
            f"    {line}" for line in (shown or errors[-15:])))
        return None
    match = re.search(r"^total\s+(\d+)$", output, re.M)
    return int(match.group(1)) if match else 0


def _summarise(report: Report, config: dict, tables: dict, registry, recipients, jobs) -> None:
    import pandas as pd

    flow = pd.read_csv(tables["flow_waves"])
    respondents = pd.read_csv(tables["respondents"])
    for wave, rows in flow.groupby("wave", sort=False):
        files = ", ".join(config["waves"][wave]["files"])
        report.summary.append(f"  {wave:<9} {int(rows['received'].sum()):>5} rows, "
                              f"{int(rows['participants'].sum()):>4} participants  ({files})")
    waves_per_person = respondents.groupby("participant_key")["wave"].nunique()
    report.summary.append(f"participants: {len(waves_per_person)}, matched across waves: "
                          f"{int((waves_per_person > 1).sum())}")
    schools = registry[registry["type"] == "school"]
    seen = set(respondents["institution"])
    report.summary.append(f"schools: {len(schools)} in the registry, {len(seen & set(schools['id']))} "
                          f"with participants; municipalities: {schools['municipality'].nunique()}")
    needs = pd.read_csv(tables["needs"])
    report.summary.append(f"needs assessment: {needs['respondent_key'].nunique()} respondents")
    kinds = pd.Series([r.report for r in recipients]).value_counts()
    report.summary.append(f"recipients: {len(recipients)} ("
                          + ", ".join(f"{count} {kind}" for kind, count in kinds.items()) + ")")
    report.summary.append(f"pipeline: {jobs} jobs to run (snakemake -n)" if jobs is not None
                          else "pipeline: not dry-run (--no-dry-run)")


def check_project(project: Path, dry_run: bool = True) -> Report:
    """Every problem the DAG build and the ingest steps would report for ``project``."""
    from dpo_eval.core.codebook import load_codebook
    from dpo_eval.core.registry import check_recipient_coverage, load_recipients, load_registry

    report = Report()
    os.chdir(project)
    config, valid = _load_config(report)
    if config is None:
        return report
    codebook = report.attempt(load_codebook, config.get("codebook", "config/codebook.yaml"))
    registry = report.attempt(load_registry, config["registry"]) if "registry" in config else None
    recipients_file = (config.get("delivery") or {}).get("recipients")
    recipients = None
    if recipients_file:
        ids = set(registry["id"]) if registry is not None else None
        recipients = report.attempt(load_recipients, recipients_file, ids)
        if registry is not None and recipients is not None:
            no_recipient = (config.get("delivery") or {}).get("no_recipient", [])
            report.attempt(check_recipient_coverage, registry, recipients, no_recipient, recipients_file)
    readable = _read_all(report, config)
    tables = None
    if valid and codebook is not None and registry is not None and readable:
        logger = logging.getLogger("dpo_eval")
        handler, propagate = _Collect(report), logger.propagate
        logger.addHandler(handler)
        logger.propagate = False
        try:
            with tempfile.TemporaryDirectory(prefix="dpo-eval-check-") as folder:
                tables = _ingest(report, config, Path(folder))
                if tables is not None and recipients is not None:
                    jobs = _dry_run(report) if dry_run and not report.problems else None
                    _summarise(report, config, tables, registry, recipients, jobs)
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate
    return report


def _todo_note(project: Path, config: dict | None) -> str | None:
    files = [project / CONFIG, project / "config" / "codebook.yaml"]
    counts = {f.relative_to(project): f.read_text(encoding="utf-8").count("TODO")
              for f in files if f.is_file()}
    left = {str(f): n for f, n in counts.items() if n}
    return ("still marked TODO: " + ", ".join(f"{f} {n}x" for f, n in left.items())) if left else None


def run(args: argparse.Namespace) -> int:
    from dpo_eval.cli import PROBLEMS, project_of

    project = project_of(args)
    report = check_project(project, dry_run=not args.no_dry_run)
    if report.problems:
        print(f"{len(report.problems)} problem(s) in {project}:", file=sys.stderr)
        for problem in report.problems:
            print("  - " + problem.replace("\n", "\n    "), file=sys.stderr)
        print("What to do: fix each of them (README, 'When the pipeline stops with a message'), "
              "then run dpo-eval check again.", file=sys.stderr)
        return PROBLEMS
    print(f"{project}: no problems found")
    print("\n".join(report.summary))
    if report.warnings:
        print(f"warnings: {len(report.warnings)} (values set to missing or decisions by the "
              "cleaning policies; listed in logs/ingest.log when the pipeline runs), e.g.:")
        print("\n".join(f"  {w}" for w in report.warnings[:3]))
    note = _todo_note(project, None)
    if note:
        print(note)
    return 0


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "check", help="list every problem of the data and configuration, without running",
        description="Check the configuration, the codebook, the registry, the recipients and "
                    "every export as the DAG build and the ingest steps do, listing every "
                    "problem at once (exit code 1), or print a summary of the study (waves, "
                    "rows, participants matched, schools, recipients). Writes nothing under "
                    "results/.")
    add_project_option(parser)
    parser.add_argument("--no-dry-run", action="store_true",
                        help="skip Snakemake's dry run (the slowest part, a few seconds)")
    parser.set_defaults(run=run)

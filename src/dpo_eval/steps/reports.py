"""Report steps: the evaluation report, the institution reports, the data dictionary and the
reproduction package."""

from __future__ import annotations

from pathlib import Path

from dpo_eval import report_batches
from dpo_eval.dictionary import build_dictionary
from dpo_eval.io import write_outputs
from dpo_eval.package import build_open_package, build_package
from dpo_eval.reporting.build import build_evaluation_report, build_institution_reports
from dpo_eval.settings import InstitutionReportSettings, ReportSettings


def evaluation_report(settings: ReportSettings, computed_with: dict, inputs: dict, lang: str,
                      output: str | Path) -> None:
    """The full evaluation report in one language; its provenance appendix prints
    ``computed_with``, the configuration the tables were computed with."""
    config = settings.report_config(inputs["codebook"], computed_with)
    build_evaluation_report(config, inputs, lang, output)


def institution_report_batch(settings: InstitutionReportSettings, inputs: dict, schools: list[str],
                             output_dir: str | Path, threads: int = 1) -> list[str]:
    """One batch of the school reports: each of ``schools`` in the language of the registry,
    aggregates only, as ``<id>.pdf`` in ``output_dir`` with the batch's ``index.csv``, rendered
    by a pool of ``threads`` processes; returns the warnings for the console summary."""
    return build_institution_reports(settings.report_config(inputs["codebook"]), inputs, output_dir,
                                     threads, institutions=list(schools))


def gather_institution_reports(batch_dirs: list[str], output_dir: str | Path) -> list[str]:
    """The batches' reports and index rows as one folder (results/reports/institutions)."""
    return report_batches.gather_institution_reports(batch_dirs, output_dir)


def data_dictionary(tables: list[str], output: str | Path) -> None:
    """The meaning of every column of every output table, checked against the tables."""
    write_outputs({output: build_dictionary(tables)})


def reproduction_package(root: str | Path, clean_files: list[str], published: list[str],
                         output: str | Path, min_cell: int) -> None:
    """Pseudonymised data, configuration, code and checksums of the published results, zipped;
    REPRODUCE.md states the k-anonymity of the data against ``min_cell``."""
    build_package(root, clean_files, published, output, min_cell)


def open_data_package(responses: str | Path, min_cell: int, output: str | Path) -> None:
    """The item responses for open publication, ``min_cell``-anonymous on the quasi-identifiers."""
    build_open_package(responses, min_cell, output)

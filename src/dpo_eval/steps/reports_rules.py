"""Report steps: the evaluation report, the institution reports, the data dictionary and the
reproduction package."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dpo_eval.reporting import report_batches
from dpo_eval.core.dictionary import build_dictionary
from dpo_eval.core.io import read_csv, write_outputs
from dpo_eval.release.packages import build_open_package, build_package, open_data
from dpo_eval.release.manifest import manifest
from dpo_eval.release.cells import control_release
from dpo_eval.reporting.build import build_evaluation_report, build_institution_reports
from dpo_eval.core.settings import DisclosureSettings, InstitutionReportSettings, ReportSettings


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


def institution_reports(batch_dirs: list[str], output_dir: str | Path) -> list[str]:
    """The batches' reports and index rows as one folder (results/reports/institutions)."""
    return report_batches.gather_institution_reports(batch_dirs, output_dir)


def disclosure_control(settings: DisclosureSettings, inputs: dict, output: dict) -> None:
    """Every cell of every report, controlled as one release (dpo_eval.release.manifest): the full
    control table (statuses and levels; values of hidden cells removed) for the reports to be
    filled from, and the manifest of the published numbers, results/reports/released_cells.csv."""
    tables = {Path(path).stem: read_csv(path) for path in inputs["tables"]}
    registry = pd.read_csv(inputs["institutions"], dtype=str, keep_default_na=False)
    _, summary = open_data(read_csv(inputs["responses"]), settings.min_cell)
    cells = control_release(read_csv(inputs["scores"]), read_csv(inputs["needs"]), registry, tables,
                            list(settings.domains), list(settings.languages), settings.min_cell, summary)
    printed = cells[cells["printed"].astype(bool)]
    counts = printed["status"].value_counts()
    logging.getLogger("dpo_eval").info(
        "disclosure control (min_cell = %d): %d cells of %d reports; %d shown, %d below the threshold "
        "(primary), %d hidden so that others cannot be worked out (complementary)", settings.min_cell,
        len(printed), printed["report"].nunique(), counts.get("shown", 0), counts.get("primary", 0),
        counts.get("complementary", 0))
    write_outputs({output["control"]: cells, output["manifest"]: manifest(cells)})


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

"""Report steps: the evaluation report, the institution reports, the data dictionary and the
reproduction package."""

from __future__ import annotations

from pathlib import Path

from dpo_eval.dictionary import build_dictionary
from dpo_eval.io import write_outputs
from dpo_eval.package import build_package
from dpo_eval.report import build_evaluation_report, build_institution_report


def evaluation_report(config: dict, inputs: dict, lang: str, output: str | Path) -> None:
    """The full evaluation report in one language."""
    build_evaluation_report(config, inputs, lang, output)


def institution_report(config: dict, inputs: dict, institution: str, output: str | Path) -> None:
    """One institution's report, in the language of the registry, aggregates only."""
    build_institution_report(config, inputs, institution, output)


def data_dictionary(tables: list[str], output: str | Path) -> None:
    """The meaning of every column of every output table, checked against the tables."""
    write_outputs({output: build_dictionary(tables)})


def reproduction_package(root: str | Path, clean_files: list[str], published: list[str],
                         output: str | Path) -> None:
    """Pseudonymised data, configuration, code and checksums of the published results, zipped."""
    build_package(root, clean_files, published, output)

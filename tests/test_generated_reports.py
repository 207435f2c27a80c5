"""The reports of generated studies say nothing the analysis did not find (slow: three full
pipeline runs; `pytest -m slow tests/test_generated_reports.py`).

A null study (no program effect), a study of 10 schools, and a study where no one answered the
communication scale (the moderation cannot be estimated) are generated, run through the whole
pipeline, and their evaluation reports read back as text: no sentence states a result of an
analysis that was not estimated or did not converge, and the null study claims no gain."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import copy_project, run_snakemake, simulate
from dpo_eval.reporting import findings as findings_module
from dpo_eval.reporting.formatting import load_strings
from dpo_eval.core.study import EVALUATION_TABLES

PDFTOTEXT = shutil.which("pdftotext") or "pdftotext"


def report_text(path: Path) -> str:
    text = subprocess.run([PDFTOTEXT, str(path), "-"], capture_output=True, check=True, text=True).stdout
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def pieces(template: str) -> list[str]:
    """The literal pieces of a string template, longest first, without the short ones."""
    parts = [" ".join(p.replace("\u00a0", " ").split()) for p in re.split(r"\{[^}]*\}", template)]
    return sorted([p.strip() for p in parts if len(p.strip()) >= 12], key=len, reverse=True)


def says(text: str, template: str) -> bool:
    """Whether a sentence made from ``template`` is in ``text`` (its longest literal piece)."""
    found = pieces(template)
    return bool(found) and found[0] in text


def check_study(project: Path, null: bool = False) -> dict:
    """Check both evaluation reports of a run project against the findings of its tables;
    returns what was checked, for the test's message."""
    tables = {name: pd.read_csv(project / "results" / "tables" / f"{name}.csv") for name in EVALUATION_TABLES}
    config = yaml.safe_load((project / "config" / "config.yaml").read_text(encoding="utf-8"))
    found = findings_module.evaluation_findings(tables, config)
    checked = {"not_usable": [], "null": null}
    for lang in ("ru", "en"):
        t = load_strings(project / "reports" / "i18n", lang)
        ti = t["interpretation"]
        text = report_text(project / "results" / "reports" / f"evaluation.{lang}.pdf")
        secondary = [*found.followup, *found.moderation, *found.shift, found.combined,
                     *(f for group in found.sensitivity.values() for f in group)]
        unusable = [f for f in secondary if not f.usable]
        for f in unusable:
            assert says(text, ti[f.status]), (lang, f.analysis, f.domain, f.status)
            checked["not_usable"].append((lang, f.analysis, f.domain, f.status))
        moderation_usable = [f for f in found.moderation if f.usable]
        if not moderation_usable:
            for key in ("moderation_none", "moderation_larger", "moderation_smaller"):
                assert not says(text, ti[key]), (lang, key)
        if not any(f.usable for f in found.followup):
            for key in ("followup_persists", "followup_larger", "followup_not_shown", "followup_reversed"):
                assert not says(text, ti[key]), (lang, key)
        sensitivity_usable = [f for g in found.sensitivity.values() for f in g if f.usable]
        if not sensitivity_usable:
            assert not says(text, ti["sensitivity_agree"]) and not says(text, ti["sensitivity_disagree"])
        if null or found.verdict == "not_demonstrated":
            assert t["verdict_not_demonstrated"].split(":")[0] in text
            for key in ("gain_shown", "conclusion_gain", "followup_persists"):
                assert not says(text, ti[key]), (lang, key)
            assert not says(text, t["verdict_supported"]) and not says(text, t["verdict_partial"])
    if null:
        assert found.gains == (), "the null study shows a gain"
    return checked


def blank_communication(project: Path) -> None:
    """No one answers the communication scale at entry: the moderation cannot be estimated."""
    from dpo_eval.simulate.exports import COMM_PROMPT

    path = project / "data" / "raw" / "pre_entry_google.csv"
    with open(path, encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    columns = [i for i, header in enumerate(rows[0]) if header.startswith(COMM_PROMPT)]
    assert columns
    for row in rows[1:]:
        for i in columns:
            row[i] = ""
    with open(path, "w", encoding="utf-8", newline="") as stream:
        csv.writer(stream, lineterminator="\n").writerows(rows)


STUDIES = {
    "null": ("--schools", "30", "--effect-scale", "0"),
    "ten schools": ("--schools", "10", "--municipalities", "4"),
    "moderation not estimable": ("--schools", "30"),
}


@pytest.mark.slow
@pytest.mark.requires_tool("pdftotext")
@pytest.mark.parametrize("study", STUDIES)
def test_generated_study_reports_claim_only_what_was_estimated(tmp_path, study):
    raw = tmp_path / "raw"
    simulate(raw.parent, "--seed", "20251127", "--needs", "60", *STUDIES[study])
    project = copy_project(tmp_path / "project", raw)
    if study == "moderation not estimable":
        blank_communication(project)
    run_snakemake(project, "--cores", "2", "results/reports/evaluation.ru.pdf", "results/reports/evaluation.en.pdf")
    checked = check_study(project, null=study == "null")
    if study == "moderation not estimable":
        assert {(a, s) for _, a, _, s in checked["not_usable"]} >= {("moderation_communication", "not_estimable")}

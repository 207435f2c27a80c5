"""The release as an attacker sees it: every report of a run at once. These tests do not use the
pipeline's disclosure code (dpo_eval.release.manifest): they rebuild the published groups from the
analysis data (release_audit) and read the PDFs' text."""

import re
import subprocess

import pandas as pd
import pytest
import yaml

from release_audit import audit

needs_pdftotext = pytest.mark.requires_tool("pdftotext")


def min_cell_of(project) -> int:
    return yaml.safe_load((project / "config" / "config.yaml").read_text(encoding="utf-8"))["reports"]["min_cell"]


def assert_no_group_can_be_narrowed(project, min_groups: int = 100):
    min_cell = min_cell_of(project)
    bad, checked = audit(project / "results", min_cell)
    assert checked > min_groups, checked
    assert not bad, f"{len(bad)} nested pairs differ by 1..{min_cell - 1} people, e.g. {bad[:3]}"
    cells = pd.read_csv(project / "results" / "reports" / "released_cells.csv", keep_default_na=False)
    # Every group published is large enough by itself, except a school's own participation
    # count, which only its own report prints (the school knows who took part).
    small = cells[(cells["n"] < min_cell) & (cells["item"] != "participation")]
    assert small.empty, small.head()
    own = cells[cells["item"] == "participation"]
    assert (own["report"] == "institutions/" + own["institutions"]).all()


@pytest.mark.pipeline
def test_demo_release_has_no_nested_groups_differing_by_fewer_than_min_cell(demo_run):
    assert_no_group_can_be_narrowed(demo_run)


@pytest.mark.pipeline
def test_small_teams_release_has_no_nested_groups_differing_by_fewer_than_min_cell(small_teams_run):
    assert_no_group_can_be_narrowed(small_teams_run)
    # The study is the hard case it is meant to be: most schools are shown a pooled level.
    index = pd.read_csv(small_teams_run / "results" / "reports" / "institutions" / "index.csv")
    assert (index["scores_level"] != "team").mean() > 0.5


DECIMAL = re.compile(r"[−-]?\d+,\d+|[−-]?\d+\.\d+")


def axis_ticks(line: str) -> set[str]:
    """The numbers of a figure's axis: a line of three or more equally spaced decimals."""
    numbers = DECIMAL.findall(line)
    values = [float(n.replace(",", ".").replace("−", "-")) for n in numbers]
    steps = {round(b - a, 6) for a, b in zip(values, values[1:])}
    return set(numbers) if len(values) >= 3 and len(steps) == 1 else set()


def printed_decimals(pdf) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    found = []
    for line in text.splitlines():
        line = re.sub(r"\b\d{2}\.\d{2}\.\d{4}\b", "", line)  # dates
        ticks = axis_ticks(line)
        found += [n for n in DECIMAL.findall(line) if n not in ticks]
    return found


def assert_every_decimal_is_a_released_cell(project):
    cells = pd.read_csv(project / "results" / "reports" / "released_cells.csv", keep_default_na=False)
    reports = sorted((project / "results" / "reports" / "institutions").glob("*.pdf"))
    assert reports
    for pdf in reports:
        rows = cells[cells["report"] == f"institutions/{pdf.stem}"]
        values = rows["value"].astype(float)
        for number in printed_decimals(pdf):
            digits = len(re.split(r"[.,]", number)[1])
            value = float(number.replace(",", ".").replace("−", "-"))
            # Printed is the value rounded to the printed digits (either way at an exact half).
            assert ((values - value).abs() <= 0.5 * 10 ** -digits + 1e-9).any(), (pdf.stem, number)


@pytest.mark.pipeline
@needs_pdftotext
def test_every_decimal_in_a_demo_school_report_is_in_its_rows_of_the_manifest(demo_run):
    assert_every_decimal_is_a_released_cell(demo_run)


@pytest.mark.pipeline
@needs_pdftotext
def test_every_decimal_in_a_small_teams_school_report_is_in_its_rows_of_the_manifest(small_teams_run):
    assert_every_decimal_is_a_released_cell(small_teams_run)

"""Reports: institution reports, disclosure control, the reproduction package, snakemake --report."""

import hashlib
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import copy_project, run_snakemake, simulate
from dpo_eval.aggregates import suppress

PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.requires_tool("pdftotext")


def pdf_text(path: Path) -> str:
    return subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout


def test_suppression_hides_small_cells_and_their_complements():
    table = pd.DataFrame({"cohort": ["a"] * 4 + ["b"] * 3, "n": [3, 12, 7, 20, 9, 10, 30]})
    hidden = suppress(table, "n", 5, within=["cohort"])
    # 3 is below 5; with the cohort total published, 7 (the next smallest) is hidden too.
    assert hidden.tolist() == [True, False, True, False, False, False, False]
    two_small = pd.DataFrame({"cohort": ["a"] * 3, "n": [2, 4, 40]})
    assert suppress(two_small, "n", 5, within=["cohort"]).tolist() == [True, True, False]


@pytest.mark.pipeline
@needs_pdftotext
def test_institution_reports_hold_no_participant_key_and_use_the_registry_language(demo_run):
    keys = set(pd.read_csv(demo_run / "results" / "clean" / "respondents.csv")["participant_key"])
    registry = pd.read_csv(demo_run / "results" / "clean" / "institutions.csv")
    schools = registry[registry["type"] == "school"]
    reports = sorted((demo_run / "results" / "reports" / "institutions").glob("*.pdf"))
    assert [p.stem for p in reports] == sorted(schools["id"])
    for path in reports:
        text = pdf_text(path)
        assert not re.search(r"\bP[0-9a-f]{16}\b", text)
        assert not any(key in text for key in keys)
        language = schools.set_index("id").loc[path.stem, "language"]
        assert ("Report for the school" in text) == (language == "en")
        assert ("Отчёт для образовательной организации" in text) == (language == "ru")


@pytest.mark.pipeline
@needs_pdftotext
def test_small_institution_is_suppressed_wherever_its_values_could_be_derived(tmp_path):
    truth = simulate(tmp_path / "study", "--seed", "41", "--schools", "24", "--needs", "60",
                     "--small-institution", "3", "--contamination", "0")
    project = copy_project(tmp_path / "project", raw_dir=tmp_path / "study" / "raw")
    run_snakemake(project, "--cores", "2", "results/reports/institutions",
                  "results/reports/evaluation.en.pdf")
    text = pdf_text(project / "results" / "reports" / "institutions" / "SCH001.pdf")
    benchmarks = pd.read_csv(project / "results" / "tables" / "score_benchmarks.csv")
    own = benchmarks[(benchmarks["level"] == "institution") & (benchmarks["institution"] == "SCH001")]
    assert len(own) > 0 and (own["n"] <= 3).all()
    # Every one of the team's means is replaced by the mark, and no count below 5 is printed.
    needs = pd.read_csv(project / "results" / "tables" / "needs_benchmarks.csv")
    own_needs = needs[(needs["level"] == "institution") & (needs["institution"] == "SCH001")]
    assert text.count("<5*") == len(own) + int(own_needs["n"].between(1, 4).sum())
    assert re.search(r"\n\S+\s+<\s?5\s*\n", text)
    for wave in ("входная", "выходная"):
        assert not re.search(wave + r"\s+\S+\s+[1-4]\s", text)
    # The evaluation report shows no institution-level value; its municipality table hides
    # every cell below 5 and a complementary cell wherever a cohort total would reveal it.
    evaluation = pdf_text(project / "results" / "reports" / "evaluation.en.pdf")
    municipalities = pd.read_csv(project / "results" / "tables" / "municipalities.csv")
    hidden = suppress(municipalities, "n", 5, within=["cohort"])
    assert ("<5*" in evaluation) == bool(hidden.any())
    # One report per school of the generated registry, the small one included.
    registry = pd.read_csv(project / "data" / "raw" / "institutions.csv")
    schools = set(registry.loc[registry["type"] == "school", "id"])
    assert len(schools) == truth["institutions"]["schools"] and "SCH001" in schools
    assert {p.stem for p in (project / "results" / "reports" / "institutions").glob("*.pdf")} == schools


@pytest.mark.pipeline
def test_reproduction_package_rebuilds_tables_and_reports_byte_for_byte(demo_run, tmp_path):
    package = demo_run / "results" / "reproduction_package.zip"
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path)
    root = tmp_path / "dpo_eval_reproduction"
    assert "dpo_eval_reproduction/REPRODUCE.md" in names
    assert not any("/data/raw/" in name for name in names), "raw data must not be packaged"
    run_snakemake(root, "--cores", "2", "--config", "reproduce=True")
    checks = (root / "CHECKSUMS.sha256").read_text().splitlines()
    assert len(checks) >= 20
    for line in checks:
        digest, path = line.split("  ", 1)
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == digest, path


@pytest.mark.pipeline
def test_snakemake_report_is_built(demo_run):
    result = run_snakemake(demo_run, "--report", "results/snakemake_report.zip", check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (demo_run / "results" / "snakemake_report.zip").stat().st_size > 10_000
    (demo_run / "results" / "snakemake_report.zip").unlink()

"""The Snakemake pipeline end to end on the demo study: outputs, incremental reruns, content of
the PDFs, absence of personal data, byte-identical results."""

import hashlib
import os
import re
import stat
import time
import zipfile
from email import message_from_bytes, policy
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import copy_project, planned_jobs, run_snakemake
from dpo_eval.core.readers import read_export
from dpo_eval.reporting.formatting import format_ci, format_p
from dpo_eval.reporting.typography import format_number

PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.requires_tool("pdftotext")
pytestmark = pytest.mark.pipeline


def pdf_text(path: Path) -> str:
    text = subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout
    return " ".join(text.split())


def readable_texts(path: Path):
    """(name, text) of a result file as a reader would see it: PDF text, decoded e-mail parts,
    every member of a zip, plain text otherwise."""
    if path.suffix == ".pdf":
        yield str(path), pdf_text(path)
    elif path.suffix == ".eml":
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        headers = "\n".join(f"{k}: {v}" for k, v in message.items())
        yield str(path), headers + message.get_body(("plain",)).get_content()
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                data = archive.read(member)
                yield f"{path}:{member}", data.decode("utf-8", errors="replace")
    else:
        yield str(path), path.read_text(encoding="utf-8")


def result_digests(project: Path) -> dict[str, str]:
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((project / "results").rglob("*")) if p.is_file()}


# The log of every job of a run of the demo study (every rule has `log:`).
EXPECTED_LOGS = {
    "ingest.log", "ingest_needs.log", "input_manifest.log", "score.log", "reliability.log",
    "needs_analysis.log", "invariance.log", "fit_combined.log", "collect_models.log",
    "disclosure_control.log", "institution_reports.log", "institution_report_batch/0.log",
    "data_dictionary.log", "reproduction_package.log", "open_data_package.log", "outbox.log",
    *(f"fit_domain/{d}.log" for d in ("universal", "professional", "subject_methodical")),
    *(f"evaluation_report/{lang}.log" for lang in ("ru", "en")),
}


def test_full_run_writes_both_evaluation_reports(demo_run):
    for lang in ("ru", "en"):
        pdf = demo_run / "results" / "reports" / f"evaluation.{lang}.pdf"
        assert pdf.read_bytes().startswith(b"%PDF-")
    for table in ("flow", "did", "descriptives", "fixed_effects", "variance_components"):
        assert len(pd.read_csv(demo_run / "results" / "tables" / f"{table}.csv")) > 0
    logs = {p.relative_to(demo_run / "logs").as_posix() for p in (demo_run / "logs").rglob("*.log")}
    assert logs == EXPECTED_LOGS
    # The steps that report what they did (counts, secret origin, model fits) wrote it.
    for name in ("ingest.log", "ingest_needs.log", "fit_combined.log", "fit_domain/universal.log"):
        assert (demo_run / "logs" / name).stat().st_size > 0, name


def test_results_are_readable_by_colleagues(demo_run):
    """Every result file has mode 0666 less the umask (0644 under the usual 022), as `ls -l`
    shows: not the 0600 of a temporary file."""
    umask = os.umask(0o022)
    os.umask(umask)
    files = [p for p in (demo_run / "results").rglob("*") if p.is_file()]
    assert len(files) > 40
    expected = 0o666 & ~umask
    wrong = {p.relative_to(demo_run).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) != expected}
    assert not wrong, f"not {oct(expected)}: {wrong}"


def test_second_run_has_nothing_to_do(demo_run):
    assert planned_jobs(demo_run) == {}


@pytest.fixture(scope="module")
def edit_copy(demo_run, tmp_path_factory) -> Path:
    """A copy of the demo run (times preserved) to edit: the demo run itself is shared with
    tests in other pytest-xdist workers, which must never see an edit in progress."""
    target = tmp_path_factory.mktemp("edit_copy") / "project"
    shutil.copytree(demo_run, target, symlinks=True)
    assert planned_jobs(target) == {}
    return target


def edited(project: Path, relative: str) -> dict[str, int]:
    """Jobs a dry run plans after ``relative`` was edited (a blank line appended: harmless to
    every reader); the file's bytes and times are restored afterwards.

    An edit, not a bare ``touch``: Snakemake 9 compares checksums of small inputs and rightly
    reruns nothing for a file whose content did not change."""
    path = project / relative
    before, content = path.stat(), path.read_bytes()
    path.write_bytes(content + b"\n")
    later = time.time() + 5  # newer than every output, whenever the project was copied
    os.utime(path, (later, later))
    try:
        return planned_jobs(project)
    finally:
        path.write_bytes(content)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_editing_the_needs_survey_reruns_only_its_consumers(edit_copy):
    jobs = edited(edit_copy, "data/raw/needs_assessment_google.csv")
    assert "ingest_needs" in jobs
    assert not {"ingest", "score", "fit_domain", "collect_models"} & set(jobs)


def test_editing_a_wave_file_reruns_ingest_and_everything_downstream(edit_copy):
    jobs = edited(edit_copy, "data/raw/followup_excel_ru.csv")
    assert {"ingest", "score", "collect_models", "evaluation_report"} <= set(jobs)
    assert jobs["fit_domain"] == 3 and "ingest_needs" not in jobs


def test_editing_a_package_module_reruns_the_rules_that_use_it(edit_copy):
    jobs = edited(edit_copy, "src/dpo_eval/analysis/models.py")
    assert jobs["fit_domain"] == 3 and "collect_models" in jobs
    # score reruns too: its step module (dpo_eval.steps.analysis_rules) imports models. The ingest
    # steps do not (tests/test_reruns.py checks every module this way).
    assert not {"ingest", "ingest_needs", "input_manifest"} & set(jobs)


def test_editing_a_template_reruns_the_reports_only(edit_copy):
    jobs = edited(edit_copy, "reports/templates/base.html")
    assert jobs["evaluation_report"] == 2
    assert not {"ingest", "score", "fit_domain", "collect_models"} & set(jobs)


def test_did_intervals_cover_the_generator_truth(demo_run, demo_truth):
    did = pd.read_csv(demo_run / "results" / "tables" / "did.csv").set_index("domain")
    # Every analysed domain (config analysis.domains) has a row and a true value.
    assert sorted(did.index) == sorted(["universal", "professional", "subject_methodical"])
    truth = demo_truth["true_effects"]["score_did"]
    for domain in did.index:
        assert did.loc[domain, "conf_low"] < truth[domain] < did.loc[domain, "conf_high"], domain


@needs_pdftotext
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_reports_print_the_numbers_of_the_tables(demo_run, lang):
    text = pdf_text(demo_run / "results" / "reports" / f"evaluation.{lang}.pdf")
    did = pd.read_csv(demo_run / "results" / "tables" / "did.csv")
    for row in did.itertuples():
        assert format_number(row.estimate, lang) in text
        assert format_ci(row.conf_low, row.conf_high, lang) in text
        assert format_p(row.p_holm, lang).replace("\u00a0", " ") in text  # pdftotext reads no-break spaces as spaces
    flow = pd.read_csv(demo_run / "results" / "tables" / "flow.csv")
    assert str(int(flow["received"].iloc[0])) in text
    assert "{{" not in text and "}}" not in text and "{%" not in text
    assert not re.search(r"\b(None|nan|NaN|undefined)\b", text)
    # Numbers in the locale's notation only: the other notation of the same numbers is absent.
    other = "en" if lang == "ru" else "ru"
    for row in did.itertuples():
        assert format_ci(row.conf_low, row.conf_high, other) not in text
        assert format_number(row.estimate, other) not in text
    heading = "Разность разностей" if lang == "ru" else "Difference-in-differences"
    assert heading in text


@pytest.fixture(scope="module")
def personal_data(demo_run) -> set[str]:
    """Every name, e-mail address and phone number of the raw exports."""
    raw = demo_run / "data" / "raw"
    personal = set()
    for name, sheet in (("pre_entry_google.csv", None), ("post_exit_yandex.xlsx", "Ответы"),
                        ("followup_excel_ru.csv", None), ("needs_assessment_google.csv", None)):
        frame = read_export(raw / name, sheet).frame
        for column in frame.columns:
            if column in ("Адрес электронной почты", "Фамилия, имя, отчество", "Контактный телефон"):
                personal |= {value for value in frame[column] if value.strip()}
    assert len(personal) > 300
    return personal


def assert_no_personal_data(paths, personal: set[str]) -> int:
    scanned = 0
    for path in paths:
        for name, text in readable_texts(path):
            scanned += 1
            leaked = [value for value in personal if value in text]
            assert not leaked, f"{name} holds personal data: {leaked[:3]}"
    return scanned


def test_no_personal_data_in_any_table_message_or_archive(demo_run, personal_data):
    """Every result other than the PDFs: CSV, JSON, e-mails (headers and decoded body) and each
    member of the reproduction package. Needs no external tool."""
    paths = [p for p in (demo_run / "results").rglob("*") if p.is_file() and p.suffix != ".pdf"]
    assert {".csv", ".json", ".eml", ".zip"} <= {p.suffix for p in paths}
    assert assert_no_personal_data(paths, personal_data) > 100


@needs_pdftotext
def test_no_personal_data_in_any_pdf(demo_run, personal_data):
    paths = [p for p in (demo_run / "results").rglob("*.pdf")]
    assert len(paths) > 10
    assert assert_no_personal_data(paths, personal_data) == len(paths)


def test_two_runs_give_byte_identical_results(demo_run, tmp_path):
    second = copy_project(tmp_path / "second")
    run_snakemake(second, "--cores", "2")
    assert result_digests(second) == result_digests(demo_run)

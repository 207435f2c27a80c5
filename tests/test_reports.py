"""Reports: institution reports, disclosure control, the reproduction package, snakemake --report."""

import hashlib
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import copy_project, planned_jobs, run_snakemake, simulate
from test_disclosure import assert_no_group_can_be_narrowed

PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.requires_tool("pdftotext")


def pdf_text(path: Path, layout: bool = True) -> str:
    """The text of a PDF, with no-break spaces read as spaces."""
    text = subprocess.run([PDFTOTEXT, *(["-layout"] if layout else []), str(path), "-"], capture_output=True,
                          check=True, text=True).stdout
    return text.replace("\u00a0", " ").replace("\u202f", " ")


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
def test_every_school_report_shows_its_team_or_its_cohorts_pool_and_nobody_elses_small_cell(demo_run):
    """Every report has a figure of its own team (participation per wave); its scores are shown
    for the team where every cell has at least min_cell respondents, otherwise for the pooled
    schools of its municipality in its cohort, or its whole cohort (never a pool mixing the
    cohorts), where the others in the pool are at least min_cell too; index.csv flags the
    reports left without any score figure of the team or municipality. No printed score
    aggregate rests on fewer than min_cell respondents."""
    folder = demo_run / "results" / "reports" / "institutions"
    index = pd.read_csv(folder / "index.csv")
    registry = pd.read_csv(demo_run / "results" / "clean" / "institutions.csv").set_index("id")
    scores = pd.read_csv(demo_run / "results" / "clean" / "scores.csv")
    bench = pd.read_csv(demo_run / "results" / "tables" / "score_benchmarks.csv")
    schools = bench[bench["level"] == "institution"]
    assert sorted(index["institution"]) == sorted(p.stem for p in folder.glob("*.pdf"))
    assert set(index["scores_level"]) <= {"team", "municipality_cohort", "cohort", "none"}
    assert (index["scores_level"] == "team").sum() >= 10 and index["scores_figure"].sum() >= 30
    for row in index.itertuples():
        text = pdf_text(folder / f"{row.institution}.pdf")
        flat = re.sub(r"\s+", " ", text)
        ru = row.language == "ru"
        assert re.search(r"Рисунок 1\. Участие команды по волнам" if ru else r"Figure 1\. Your team's participation", flat)
        own = schools[schools["institution"] == row.institution]
        team = scores[scores["institution"] == row.institution]
        counts = [team.loc[team["wave"] == w, "participant_key"].nunique() for w in ("pre", "post", "followup")]
        waves = ("входная", "выходная", "отсроченная") if ru else ("pre", "post", "follow-up")
        assert "; ".join(f"{w}: {c}" for w, c in zip(waves, counts)) in flat
        municipality = registry.loc[row.institution, "municipality" if ru else "municipality_en"]
        figure = re.search(r"(Рисунок|Figure) 2\. .*?(и регион|and the region)", flat)
        if row.scores_level == "team":
            assert figure and ("ваша команда" in figure.group(0) or "your team" in figure.group(0))
            core = own[own["wave"].isin(["pre", "post"]) & own["domain"].isin(["universal", "professional",
                                                                               "subject_methodical"])]
            assert (core["n"] >= 5).all()
        elif row.scores_level == "municipality_cohort":
            assert figure and municipality in figure.group(0), figure
        else:
            assert not row.scores_figure
        # Every respondent count printed beside a score (column "Ответили"/"Respondents") is at
        # least min_cell, and for a pooled level the others in the pool are too.
        for line in text.splitlines():
            match = re.search(r"(входная|выходная|отсроченная|pre|post|follow-up)\s+(\d,\d\d|\d\.\d\d)\s+(\d+)\s", line)
            if match:
                n = int(match.group(3))
                assert n >= 5, line
                wave = {"входная": "pre", "выходная": "post", "отсроченная": "followup", "follow-up": "followup"}.get(
                    match.group(1), match.group(1))
                if row.scores_level != "team":
                    n_own = int(own[(own["wave"] == wave)]["n"].max()) if (own["wave"] == wave).any() else 0
                    assert n - n_own >= 5, line
        assert "< 5" not in flat.replace("<5*", "")


@pytest.mark.pipeline
@needs_pdftotext
def test_russian_report_reads_as_russian(demo_run):
    text = pdf_text(demo_run / "results" / "reports" / "evaluation.ru.pdf")
    flat = re.sub(r"\s+", " ", text)
    participants = int(pd.read_csv(demo_run / "results" / "tables" / "sample.csv")
                       .query("characteristic == 'participants'")["n"].sum())
    assert participants == 251
    assert "251 участник " in flat
    # No "участников" after a numeral ending in 1 (except 11).
    for match in re.finditer(r"(\d+) участников", flat):
        number = int(match.group(1))
        assert not (number % 10 == 1 and number % 100 != 11), match.group(0)
    glossary = yaml.safe_load((demo_run / "reports" / "i18n" / "glossary.ru.yaml").read_text(encoding="utf-8"))
    for term in glossary["terms"]:
        for pattern in term["avoid"]:
            assert not re.search(pattern, flat), (pattern, re.findall(".{30}" + pattern + ".{10}", flat))
    # Tables: no ASCII hyphen-minus before a digit (negative numbers use U+2212), except in
    # dates, ranges of the provenance appendix and checksums.
    body = flat.rsplit("Приложение Б. Происхождение результатов", 1)[0]
    assert not re.search(r"(?<![\w\d–-])-\d", body), re.findall(r".{20}(?<![\w\d–-])-\d.{10}", body)[:5]
    assert "−" in body


@pytest.mark.pipeline
@needs_pdftotext
def test_institution_reports_are_one_batch_with_a_quiet_log(demo_run):
    log = (demo_run / "logs" / "institution_report_batch" / "0.log").read_text(encoding="utf-8")
    assert "DEBUG" not in log and "fontTools" not in log
    assert "institution reports: 60 written" in log
    gather = (demo_run / "logs" / "institution_reports.log").read_text(encoding="utf-8")
    assert "institution reports: 60 gathered from 1 batch(es)" in gather


def test_reports_rendered_in_the_calling_process_leave_its_garbage_collector_as_it_was(demo_run, tmp_path):
    """A renderer collects garbage less often and freezes what it loaded (build._collect_less);
    rendered in the calling process (threads=1), the caller gets its thresholds back and nothing
    stays frozen; the reports are the bytes of the pipeline's."""
    import gc
    import glob

    from dpo_eval.reporting.build import build_institution_reports

    config = yaml.safe_load((demo_run / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["codebook"] = str(demo_run / "config" / "codebook.yaml")
    results = demo_run / "results"
    inputs = {"tables": sorted(glob.glob(str(results / "tables" / "*.csv"))),
              "institutions": str(results / "clean" / "institutions.csv"),
              "control": str(results / "audit" / "disclosure_control.csv"),
              "pseudonymisation": str(results / "clean" / "pseudonymisation.json"), "codebook": config["codebook"],
              "i18n": str(demo_run / "reports" / "i18n"), "template": str(demo_run / "reports" / "templates" / "institution.html")}
    before = gc.get_threshold()
    build_institution_reports(config, inputs, tmp_path / "out", threads=1, institutions=["SCH007", "SCH028"])
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    for school in ("SCH007", "SCH028"):
        assert (tmp_path / "out" / f"{school}.pdf").read_bytes() == \
            (results / "reports" / "institutions" / f"{school}.pdf").read_bytes()


@pytest.mark.pipeline
def test_school_reports_are_the_same_bytes_for_any_batch_size(demo_run, tmp_path):
    """The demo's 60 school reports rendered as 9 batch jobs of at most 7 schools equal the
    single job's reports and index byte for byte."""
    project = tmp_path / "batched"
    shutil.copytree(demo_run, project, symlinks=True)
    config_path = project / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["reports"]["batch_size"] = 7
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert planned_jobs(project) == {"institution_report_batch": 9, "institution_reports": 1, "outbox": 1, "all": 1}
    run_snakemake(project, "--cores", "2")
    single = demo_run / "results" / "reports" / "institutions"
    batched = project / "results" / "reports" / "institutions"
    assert sorted(p.name for p in batched.iterdir()) == sorted(p.name for p in single.iterdir())
    for path in sorted(single.iterdir()):
        assert (batched / path.name).read_bytes() == path.read_bytes(), path.name
    assert len(list((project / "logs" / "institution_report_batch").glob("*.log"))) == 9
    assert not (project / "results" / "reports" / "batches").exists() or \
        not any((project / "results" / "reports" / "batches").iterdir())


@pytest.mark.pipeline
@needs_pdftotext
def test_small_institution_is_suppressed_wherever_its_values_could_be_derived(small_teams_run):
    project = small_teams_run
    text = pdf_text(project / "results" / "reports" / "institutions" / "SCH001.pdf")
    flat = re.sub(r"\s+", " ", text)
    benchmarks = pd.read_csv(project / "results" / "tables" / "score_benchmarks.csv")
    own = benchmarks[(benchmarks["level"] == "institution") & (benchmarks["institution"] == "SCH001")]
    assert len(own) > 0 and (own["n"] <= 1).all()
    index = pd.read_csv(project / "results" / "reports" / "institutions" / "index.csv").set_index("institution")
    assert index.loc["SCH001", "scores_level"] != "team"
    # The team's own participation is shown unsuppressed (the school knows who took part) ...
    assert re.search(r"входная: [01]; выходная: [01]", flat)
    # ... but none of its means: every score printed rests on at least 5 respondents besides it.
    printed = [match for line in text.splitlines()
               if (match := re.search(r"(входная|выходная|отсроченная)\s+(\d,\d\d)\s+(\d+)\s", line))]
    assert printed, "the school report shows no score row"
    for match in printed:
        assert int(match.group(3)) - 1 >= 5, match.group(0)
    needs = pd.read_csv(project / "results" / "tables" / "needs_benchmarks.csv")
    own_needs = needs[(needs["level"] == "institution") & (needs["institution"] == "SCH001")]
    assert flat.count("<5*") >= int(own_needs["n"].between(1, 4).sum())
    assert "< 5" not in flat.replace("<5*", "")
    # The evaluation report marks exactly what the control hid, each with the mark of its reason:
    # "<5*" only on groups below 5, "×" on groups hidden so that others cannot be worked out.
    evaluation = pdf_text(project / "results" / "reports" / "evaluation.en.pdf")
    control = pd.read_csv(project / "results" / "audit" / "disclosure_control.csv")
    mine = control[(control["report"] == "evaluation.en") & control["printed"]]
    assert ("<5*" in evaluation) == (mine["status"] == "primary").any()
    assert ("×" in evaluation) == (mine["status"] == "complementary").any()
    assert (mine.loc[mine["status"] == "primary", "n"] < 5).all()
    assert (mine.loc[mine["status"] == "complementary", "n"] >= 5).all()
    # One report per school of the generated registry, the small one included.
    registry = pd.read_csv(project / "data" / "raw" / "institutions.csv")
    schools = set(registry.loc[registry["type"] == "school", "id"])
    assert len(schools) == 30 and "SCH001" in schools
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


@pytest.mark.pipeline
@needs_pdftotext
def test_small_study_report_never_puts_an_interval_off_zero_next_to_not_significant(tmp_path):
    simulate(tmp_path / "study", "--seed", "20251127", "--schools", "10", "--municipalities", "4")
    project = copy_project(tmp_path / "project", raw_dir=tmp_path / "study" / "raw")
    run_snakemake(project, "--cores", "2", "results/reports/evaluation.ru.pdf")
    flat = re.sub(r"\s+", " ", pdf_text(project / "results" / "reports" / "evaluation.ru.pdf", layout=False))
    summary = flat.split("В анализе —")[0].rsplit("Резюме", 1)[1]
    sentences = [s.strip() for s in summary.split("•")[1:]]
    assert len(sentences) == 3, sentences
    for sentence in sentences:
        low, high = (float(v.replace("−", "-").replace(",", "."))
                     for v in re.search(r"ДИ (?:\(доверительный интервал\) )?с поправкой Холма: (−?\d+,\d+); (−?\d+,\d+)",
                               sentence).groups())
        assert (low <= 0 <= high) == ("не значимо" in sentence), sentence
    assert "повысила" not in flat and "не подтверждается" not in flat
    # The second generated study of the release audit (tests/test_disclosure.py): the run built
    # the whole release's manifest to render the evaluation report.
    assert_no_group_can_be_narrowed(project, min_groups=50)

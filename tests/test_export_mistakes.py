"""Real export mistakes at the input edge (issue 20): codes changed by Excel are restored and
audited, a wave on another scale is one error, participants without a cohort are excluded under
a documented policy, and the generator's national-size studies run with the default config."""

import copy
import io
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_project, run_snakemake, simulate, use_test_secret
from dpo_eval.core.codebook import load_codebook
from dpo_eval.ingest.codes import normalise_code
from dpo_eval.ingest import ingest_competencies
from dpo_eval.core.registry import load_registry
from dpo_eval.core.io import csv_bytes
from dpo_eval.analysis.models import did_table, fit_primary, model_frame
from dpo_eval.analysis.scoring import scale_scores
from dpo_eval.analysis.sensitivity import domain_effect_sizes
from dpo_eval.simulate import MUNICIPALITIES
from test_bad_input import (CODE, COHORT, FOLLOWUP, POST, PRE, edit_rows,
                            edit_sheet, ingest_fails, ingest_tables, study, baseline)  # noqa: F401

SAME = ("responses", "respondents", "flow_waves", "match_audit", "duplicates")
PREFIX_DIGITS = {normalise_code(letters): f"{number:02d}"
                 for number, (_, letters, *_rest) in enumerate(MUNICIPALITIES, start=1)}


def digit_code(cell: str) -> str:
    """A demo code as a digit-only code with a leading zero ("ХБ-011-03" -> "0101103"):
    municipality letters as their two-digit number, typos kept."""
    code = normalise_code(cell)
    return PREFIX_DIGITS.get(code[:2], "99") + code[2:]


def with_codes(raw: Path, change_pre, change_post, change_followup) -> None:
    """Every wave's participant codes rewritten cell by cell."""
    def rows(change):
        def apply(records):
            column = column_of_code(records[0])
            for record in records[1:]:
                if record and record[column].strip():
                    record[column] = change(record[column])
        return apply
    edit_rows(raw / PRE, rows(change_pre))
    edit_rows(raw / FOLLOWUP, rows(change_followup))

    def sheet(worksheet):
        column = [c.value for c in worksheet[1]].index(next(
            h for h in (c.value for c in worksheet[1]) if str(h).startswith("Код участника"))) + 1
        for (cell,) in worksheet.iter_rows(min_row=2, min_col=column, max_col=column):
            if cell.value not in (None, ""):
                cell.value = change_post(str(cell.value))
    edit_sheet(raw / POST, sheet)


def column_of_code(header: list[str]) -> int:
    return next(i for i, h in enumerate(header) if h.startswith("Код участника"))


def digits_as_text(cell: str) -> str:
    return digit_code(cell)



def digits_as_number(cell: str) -> int:
    return int(digit_code(cell))


def did_bytes(tables: dict[str, bytes], config: dict) -> bytes:
    """results/tables/did.csv as the pipeline computes it (score, primary model and d_ppc2 per
    domain, models.did_table) from the ingest tables."""
    codebook = load_codebook(config["codebook"])
    responses = pd.read_csv(io.BytesIO(tables["responses"]))
    scores = scale_scores(responses, {d: len(codebook.items_of(d)) for d in codebook.domains},
                          config["analysis"]["min_item_share"])
    covariates = list(config["analysis"]["covariates"])
    fits, d_ppc2 = {}, {}
    for domain in config["analysis"]["domains"]:
        fit = fit_primary(model_frame(scores, domain, covariates), covariates)
        fit.pop("r_frame")
        fits[domain] = {"domain": domain, **fit}
        d_ppc2[domain] = next(e for e in domain_effect_sizes(scores, domain)
                              if e["measure"] == "d_ppc2")
    return csv_bytes(did_table(fits, d_ppc2))


def restored_rows(tables: dict[str, bytes]) -> pd.DataFrame:
    invalid = pd.read_csv(io.BytesIO(tables["invalid_values"]))
    return invalid[invalid["problem"].str.startswith("participant code restored")]


@pytest.fixture(scope="module")
def digit_study(tmp_path_factory, demo_config):
    """The demo study with digit-only codes (leading zeros) typed as text in every wave: the
    clean run that the Excel-damaged variants must reproduce."""
    folder = tmp_path_factory.mktemp("digits")
    raw, config = _copy(folder, demo_config)
    with_codes(raw, digits_as_text, digits_as_text, digits_as_text)
    tables = ingest_tables(config, folder / "results")
    return raw, config, tables


def _copy(folder: Path, demo_config: dict) -> tuple[Path, dict]:
    import shutil

    from conftest import with_test_secret

    raw = folder / "raw"
    shutil.copytree(REPO / "data" / "raw", raw)
    config = with_test_secret(copy.deepcopy(demo_config), folder)
    for wave in config["waves"].values():
        wave["files"] = [str(raw / Path(f).name) for f in wave["files"]]
    config["registry"] = str(raw / "institutions.csv")
    return raw, config


def test_codes_excel_turned_into_numbers_are_restored_and_did_is_unchanged(
        tmp_path, demo_config, digit_study):
    _, clean_config, clean = digit_study
    raw, config = _copy(tmp_path, demo_config)
    # The follow-up saved by Excel: zeros lost, some cells written back as "101103.0"; the exit
    # wave's XLSX holds the codes as numbers. No code format is declared in the codebook.
    changed = []

    def excel_csv(cell: str) -> str:
        code = digit_code(cell)
        decimals = len(changed) % 5 == 0
        changed.append(code.startswith("0") or decimals)
        return str(int(code)) + (".0" if decimals else "")
    with_codes(raw, digits_as_text, digits_as_number, excel_csv)
    tables = ingest_tables(config, tmp_path / "results")
    for name in SAME:
        assert tables[name] == clean[name], name
    restored = restored_rows(tables)
    assert (restored["file"] == FOLLOWUP).sum() == sum(changed) > 20
    assert (restored["file"] == POST).sum() > 100
    assert restored["problem"].str.contains("leading zeros lost by Excel put back").any()
    assert restored[restored["file"] == FOLLOWUP]["problem"].str.contains("decimals").any()
    # The codes themselves never reach the audit.
    assert not restored["problem"].str.contains(r"\d{5}").any()
    assert did_bytes(tables, config) == did_bytes(clean, clean_config)


def test_excel_text_marker_before_codes_is_removed_and_audited(study, tmp_path, baseline):
    raw, config = study
    with_codes(raw, lambda cell: "'" + cell, lambda cell: cell, lambda cell: cell)
    tables = ingest_tables(config, tmp_path / "results")
    for name in SAME:
        assert tables[name] == baseline[name], name
    restored = restored_rows(tables)
    assert set(restored["file"]) == {PRE}
    assert restored["problem"].str.contains("leading apostrophe").all()


def test_declared_code_format_lists_codes_that_do_not_fit(tmp_path, demo_config, digit_study):
    raw, config = _copy(tmp_path, demo_config)
    with_codes(raw, digits_as_text, digits_as_number, digits_as_text)

    def break_one(records):
        records[5][column_of_code(records[0])] = "01А1103"
    edit_rows(raw / PRE, break_one)
    codebook = yaml.safe_load((REPO / "config" / "codebook.yaml").read_text(encoding="utf-8"))
    codebook["fields"]["participant_code"]["format"] = {"pattern": r"\d{7}", "width": 7}
    config["codebook"] = str(tmp_path / "codebook.yaml")
    Path(config["codebook"]).write_text(yaml.safe_dump(codebook, allow_unicode=True), encoding="utf-8")
    message = ingest_fails(config, tmp_path)
    assert message.startswith(f"{raw / PRE}, row 6, column '{CODE}': participant code '01А1103' "
                              "does not fit the code format of the codebook")
    assert "Traceback" not in message


def seven_point(cell: str) -> str:
    return {"1": "1", "2": "3", "3": "4", "4": "5", "5": "7"}.get(cell.strip(), cell)


def on_seven_points(records):
    header = records[0]
    items = [i for i, h in enumerate(header) if h.startswith("Я ") or h.startswith("Мне ")]
    for record in records[1:]:
        for i in items:
            if i < len(record):
                record[i] = seven_point(record[i])


def test_wave_on_another_scale_is_one_error_not_cells_set_to_missing(study, tmp_path):
    raw, config = study
    assert config["cleaning"]["out_of_range"] == "missing"
    edit_rows(raw / FOLLOWUP, on_seven_points)
    message = ingest_fails(config, tmp_path)
    assert message.startswith(f"{raw / FOLLOWUP}: wave followup: ")
    assert "answers on scale 'agree5'" in message
    assert "the file uses numbers 1..7, the codebook expects 1..5" in message
    assert "recode this wave's answers" in message
    assert "outside the scale" not in message  # not a pile of single cells


@pytest.mark.pipeline
def test_pipeline_stops_on_a_wave_on_another_scale_without_traceback(tmp_path):
    project = use_test_secret(copy_project(tmp_path / "project"))
    edit_rows(project / "data" / "raw" / FOLLOWUP, on_seven_points)
    result = run_snakemake(project, "--cores", "2", "results/clean/responses.csv", check=False)
    assert result.returncode != 0
    console = result.stderr + result.stdout
    assert f"{FOLLOWUP}: wave followup: " in console and "Traceback" not in console
    assert "the file uses numbers 1..7, the codebook expects 1..5" in console
    assert not (project / "results" / "clean" / "responses.csv").exists()


def test_values_set_to_missing_are_counted_per_wave_in_the_flow(study, tmp_path, demo_truth):
    raw, config = study
    tables = ingest_tables(config, tmp_path / "results")
    flow = pd.read_csv(io.BytesIO(tables["flow_waves"]))
    per_wave = flow.groupby("wave")["set_missing"].sum().to_dict()
    assert per_wave == {"pre": 0, "post": 0, "followup": len(demo_truth["out_of_range"])}


def test_participants_without_a_cohort_are_excluded_audited_and_counted(study, tmp_path, demo_truth):
    raw, config = study
    codebook = yaml.safe_load((REPO / "config" / "codebook.yaml").read_text(encoding="utf-8"))
    codebook["waves"]["post"]["fields"].remove("cohort")
    config["codebook"] = str(tmp_path / "codebook.yaml")
    Path(config["codebook"]).write_text(yaml.safe_dump(codebook, allow_unicode=True), encoding="utf-8")
    edit_sheet(raw / POST, lambda sheet: sheet.delete_cols(
        [c.value for c in sheet[1]].index(COHORT) + 1))
    assert config["cleaning"].get("without_cohort", "exclude") == "exclude"
    tables = ingest_tables(config, tmp_path / "results")
    codes_at_pre = {s["code"] for s in demo_truth["submissions"] if s["wave"] == "pre"}
    # Nobody seen at entry: post gives no cohort now, the follow-up never does.
    without = {wave: [s for s in demo_truth["submissions"] if s["wave"] == wave and s["kept"]
                      and s["code"] not in codes_at_pre] for wave in ("post", "followup")}
    post_only = without["post"]
    flow = pd.read_csv(io.BytesIO(tables["flow_waves"]))
    unknown = flow[flow["cohort"] == "unknown"]
    assert unknown[["wave", "participants", "excluded", "analysed"]].values.tolist() == [
        [wave, len(found), len(found), 0] for wave, found in without.items()]
    invalid = pd.read_csv(io.BytesIO(tables["invalid_values"]))
    excluded = invalid[invalid["problem"].str.startswith("no wave gives a cohort")]
    assert sorted(zip(excluded["file"], excluded["row"])) == sorted(
        (s["file"], s["row"]) for found in without.values() for s in found)
    respondents = pd.read_csv(io.BytesIO(tables["respondents"]))
    assert respondents["cohort"].notna().all()
    config["cleaning"]["without_cohort"] = "error"
    message = ingest_fails(config, tmp_path / "strict")
    assert message.startswith(f"{len(post_only)} problem(s)")


SEEDS = (11, 12, 13)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_generator_studies_at_national_size_run_with_the_default_configuration(tmp_path, seed):
    """2,000 schools (about 8,000 participants): every study the generator writes runs through
    ingest with config/config.yaml as shipped."""
    truth = simulate(tmp_path, "--seed", str(seed), "--schools", "2000")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    for wave in config["waves"].values():
        wave["files"] = [str(tmp_path / "raw" / Path(f).name) for f in wave["files"]]
    codebook = load_codebook(REPO / "config" / "codebook.yaml")
    start = time.perf_counter()
    result, _ = ingest_competencies(config, codebook, load_registry(tmp_path / "raw" / "institutions.csv"),
                                    b"test-secret-not-the-public-demo-one")
    assert time.perf_counter() - start < 600
    flow = result.flow
    assert flow["received"].sum() == sum(w["rows"] for w in truth["waves"].values())
    analysed = flow[flow["cohort"] != "unknown"]
    assert analysed["participants"].sum() > 0.95 * sum(
        sum(w["by_cohort"].values()) for w in truth["waves"].values())

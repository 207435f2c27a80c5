"""Bad input: each problem fails with a message naming the file, row and column and the fix,
and leaves no partial output."""

import copy
import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
import yaml

from conftest import REPO, copy_project, run_snakemake, use_test_secret, with_test_secret
from dpo_eval.core import readers
from dpo_eval.core.codebook import load_codebook
from dpo_eval.ingest.codes import normalise_code
from dpo_eval.core.config import ConfigError
from dpo_eval.core.registry import load_recipients
from dpo_eval.core.errors import UserError
from dpo_eval.core.registry import load_registry
from dpo_eval.core.settings import IngestSettings, NeedsIngestSettings
from dpo_eval.steps import ingest_rules as ingest_step

PRE = "pre_entry_google.csv"
POST = "post_exit_yandex.xlsx"
FOLLOWUP = "followup_excel_ru.csv"
SHEET = "Ответы"
OUTPUTS = ("responses", "respondents", "flow_waves", "match_audit", "duplicates",
           "invalid_values", "institutions")
CODE = "Код участника (выдаётся организатором курса)"
COHORT = "Программа обучения"
YEARS = "Стаж работы в управленческой должности, лет"


@pytest.fixture
def study(tmp_path, demo_config):
    """A writable copy of the demo study and a config pointing to it."""
    raw = tmp_path / "raw"
    shutil.copytree(REPO / "data" / "raw", raw)
    # A variant of the demo study: the demo secret is refused for it.
    config = with_test_secret(copy.deepcopy(demo_config), tmp_path)
    for wave in config["waves"].values():
        wave["files"] = [str(raw / Path(f).name) for f in wave["files"]]
    config["needs"]["files"] = [str(raw / Path(f).name) for f in config["needs"]["files"]]
    config["registry"] = str(raw / "institutions.csv")
    return raw, config


def ingest_fails(config, tmp_path) -> str:
    outputs = {name: str(tmp_path / "results" / f"{name}.csv") for name in OUTPUTS}
    outputs["pseudonymisation"] = str(tmp_path / "results" / "pseudonymisation.json")
    with pytest.raises(UserError) as error:
        ingest_step.ingest(IngestSettings.from_config(config), config["registry"], config["codebook"],
                           outputs, results_dir=tmp_path / "results")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    return str(error.value)


def ingest_tables(config, out: Path) -> dict[str, bytes]:
    """Run the real ingest step; its tables as bytes by name."""
    outputs = {name: out / f"{name}.csv" for name in OUTPUTS}
    ingest_step.ingest(IngestSettings.from_config(config), config["registry"], config["codebook"],
                       {**{k: str(v) for k, v in outputs.items()}, "pseudonymisation": str(out / "pseudonymisation.json")},
                       results_dir=out)
    return {name: path.read_bytes() for name, path in outputs.items()}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, demo_config) -> dict[str, bytes]:
    """The ingest tables of the unchanged demo study."""
    folder = tmp_path_factory.mktemp("baseline")
    # The secret lies beside the results, never inside them (load_secret refuses that).
    return ingest_tables(with_test_secret(copy.deepcopy(demo_config), folder), folder / "results")


def read_rows(path: Path) -> tuple[list[list[str]], str, str]:
    """A CSV's records with the encoding and separator it was written in."""
    table = readers.read_export(path)
    text = path.read_bytes().decode(table.encoding.replace("utf-8", "utf-8-sig"))
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=table.delimiter)), \
        table.encoding, table.delimiter


def edit_rows(path: Path, change) -> None:
    """Apply ``change(rows)`` to a CSV's records (rows[0] is the header, rows[n] spreadsheet
    row n + 1) and save it in its own encoding and separator."""
    rows, encoding, delimiter = read_rows(path)
    change(rows)
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


def edit_sheet(path: Path, change) -> None:
    workbook = openpyxl.load_workbook(path)
    change(workbook[SHEET])
    workbook.save(path)


def table_rows(data: bytes) -> list[tuple[str, ...]]:
    return [tuple(row) for row in csv.reader(io.StringIO(data.decode("utf-8")))]


def column_of(rows, header: str) -> int:
    return rows[0].index(header)


def edit(path: Path, old: str, new: str, count: int = 1, encoding: str = "utf-8") -> None:
    text = path.read_text(encoding=encoding)
    assert old in text
    path.write_text(text.replace(old, new, count), encoding=encoding)


def test_missing_required_column_lists_closest_headers(study, tmp_path):
    raw, config = study
    edit(raw / PRE, "Код участника (выдаётся организатором курса)", "Код участнка")
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 1: required column for 'participant_code' not found" in message
    assert "closest header found: 'Код участнка'" in message
    assert "What to do: rename the column" in message


def test_unknown_label_names_row_column_and_fix(study, tmp_path):
    raw, config = study
    lines = (raw / PRE).read_text(encoding="utf-8").split("\n")
    lines[4] = lines[4].replace("Скорее", "Абсолютно", 1)
    (raw / PRE).write_text("\n".join(lines), encoding="utf-8")
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 5, column 'Оцените, насколько" in message
    assert "is not a label of scale 'agree5'" in message and "add it as a variant" in message


def test_out_of_range_values_fail_by_default_listing_every_cell(study, tmp_path, demo_truth):
    raw, config = study
    config["cleaning"].pop("out_of_range")
    message = ingest_fails(config, tmp_path)
    for cell in demo_truth["out_of_range"]:
        assert f"{cell['file']}, row {cell['row']}, column '{cell['column']}': value '{cell['value']}' is outside the scale 1..5" in message
    assert f"{len(demo_truth['out_of_range'])} problem(s)" in message


def test_unreadable_encoding(study, tmp_path):
    raw, config = study
    text = (raw / PRE).read_text(encoding="utf-8")
    (raw / PRE).write_bytes(text.encode("utf-16"))
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}: is not a text file in UTF-8 or Windows-1251" in message and "What to do" in message


def test_empty_file(study, tmp_path):
    raw, config = study
    (raw / PRE).write_bytes(b"")
    assert f"{PRE}: is empty" in ingest_fails(config, tmp_path)


def test_duplicated_header(study, tmp_path):
    raw, config = study
    edit(raw / PRE, "Контактный телефон", "Должность")
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 1, column 'Должность': duplicated header" in message


def test_missing_wave_file(study, tmp_path):
    raw, config = study
    (raw / "followup_excel_ru.csv").unlink()
    message = ingest_fails(config, tmp_path)
    assert "followup_excel_ru.csv: does not exist" in message and "config/config.yaml" in message


def test_xlsx_with_several_candidate_sheets(study, tmp_path):
    raw, config = study
    config["waves"]["post"].pop("sheet")
    message = ingest_fails(config, tmp_path)
    assert "post_exit_yandex.xlsx: has several sheets (Ответы, Сводка)" in message
    assert "set `sheet:`" in message


def test_unknown_institution_suggests_the_registry_name(study, tmp_path):
    raw, config = study
    edit(raw / PRE, "МБОУ СОШ № 3 (г. Хабаровск)", "МБОУ СОШ №3 г Хабаровск")
    message = ingest_fails(config, tmp_path)
    assert "is not in the registry (did you mean 'МБОУ СОШ № 3 (г. Хабаровск)'?)" in message


@pytest.mark.pipeline
def test_pipeline_stops_with_the_message_and_writes_nothing(tmp_path):
    project = use_test_secret(copy_project(tmp_path / "project"))
    lines = (project / "data" / "raw" / PRE).read_text(encoding="utf-8").split("\n")
    lines[2] = lines[2].replace("Скорее", "Абсолютно", 1)
    (project / "data" / "raw" / PRE).write_text("\n".join(lines), encoding="utf-8")
    result = run_snakemake(project, "--cores", "2", check=False)
    assert result.returncode != 0
    assert f"{PRE}, row 3, column" in (project / "logs" / "ingest.log").read_text(encoding="utf-8")
    console = result.stderr + result.stdout
    assert "row 3, column" in console and "Traceback" not in console
    assert console.count("is not a label of scale 'agree5'") == 1
    assert not (project / "results" / "clean" / "responses.csv").exists()
    assert not (project / "results" / "tables" / "flow.csv").exists()


@pytest.mark.pipeline
def test_pipeline_names_a_missing_wave_file(tmp_path):
    project = copy_project(tmp_path / "project")
    (project / "data" / "raw" / "followup_excel_ru.csv").unlink()
    result = run_snakemake(project, "-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert "data/raw/followup_excel_ru.csv" in result.stderr + result.stdout


# --------------------------------------------------------------------------- issue 10: each row of
# its table as a variant of the demo study, run through the real ingest step.


def test_reworded_item_header_names_item_expected_text_and_closest_header(study, tmp_path):
    raw, config = study
    reworded = "Оцените, насколько вы согласны с утверждениями о себе [Я умею организовывать командную работу управленческой команды]"
    edit(raw / PRE, "[Я умею организовать командную", "[Я умею организовывать командную")
    message = ingest_fails(config, tmp_path)
    assert (f"{PRE}, row 1: no column for item uk1 'Я умею организовать командную работу "
            f"управленческой команды' of wave pre (closest header found: '{reworded}')") in message
    assert "What to do: make the header contain the item text exactly" in message


def test_deleted_item_column_is_an_error(study, tmp_path):
    raw, config = study
    header = "Мне трудно консультировать педагогов по предметной методике"
    edit_rows(raw / FOLLOWUP, lambda rows: [row.pop(rows[0].index(header)) for row in rows[::-1]])
    message = ingest_fails(config, tmp_path)
    assert (f"{FOLLOWUP}, row 1: no column for item pm3 '{header}' of wave followup "
            "(no similar header found)") in message
    assert "waves.followup.not_asked" in message


def test_item_column_the_wave_does_not_ask_is_an_error(study, tmp_path):
    raw, config = study
    header = "Запросы нашей школы остаются без ответа"
    edit_rows(raw / FOLLOWUP, lambda rows: [row.append(header if n == 0 else "3")
                                            for n, row in enumerate(rows)])
    message = ingest_fails(config, tmp_path)
    assert (f"{FOLLOWUP}, row 1, column '{header}': is a column for item cm3, which the "
            "codebook does not expect in wave followup") in message


def test_unrecognised_question_column_is_an_error_or_a_warning(study, tmp_path, baseline):
    raw, config = study
    question = "Насколько вы удовлетворены организацией курса?"
    edit_rows(raw / PRE, lambda rows: [row.append(question if n == 0 else "Очень")
                                       for n, row in enumerate(rows)])
    message = ingest_fails(config, tmp_path)
    assert (f"{PRE}, row 1, column '{question}': looks like a question but is neither an item "
            "nor a field of the codebook") in message
    assert "cleaning.unknown_columns: warning" in message
    config["cleaning"]["unknown_columns"] = "warning"
    assert ingest_tables(config, tmp_path / "warned") == baseline


def test_missing_cohort_column_in_one_wave_is_an_error(study, tmp_path):
    raw, config = study

    def drop_cohort(sheet):
        index = [c.value for c in sheet[1]].index(COHORT) + 1
        sheet.delete_cols(index)

    edit_sheet(raw / POST, drop_cohort)
    message = ingest_fails(config, tmp_path)
    assert f"{POST}, row 1: required column for 'cohort' not found" in message
    assert "remove 'cohort' from waves.post.fields" in message


def test_participant_without_any_cohort_is_an_error(study, tmp_path, demo_truth):
    """Even where the codebook does not require the cohort at post, participants seen only at
    post (without a cohort) no longer vanish from the flow table silently: under
    cleaning.without_cohort: error they stop the run (the default, exclude, is tested in
    test_export_mistakes.py)."""
    raw, config = study
    config["cleaning"]["without_cohort"] = "error"
    codebook = yaml.safe_load((REPO / "config" / "codebook.yaml").read_text(encoding="utf-8"))
    codebook["waves"]["post"]["fields"].remove("cohort")
    config["codebook"] = str(tmp_path / "codebook.yaml")
    Path(config["codebook"]).write_text(yaml.safe_dump(codebook, allow_unicode=True), encoding="utf-8")
    edit_sheet(raw / POST, lambda sheet: sheet.delete_cols(
        [c.value for c in sheet[1]].index(COHORT) + 1))
    message = ingest_fails(config, tmp_path)
    # Only the pre and post files give a cohort: participants with no pre submission have none.
    codes_at_pre = {s["code"] for s in demo_truth["submissions"] if s["wave"] == "pre"}
    post_only = [s for s in demo_truth["submissions"]
                 if s["wave"] == "post" and s["kept"] and s["code"] not in codes_at_pre]
    assert len(post_only) == demo_truth["matched"]["post_only"] == 7
    assert message.startswith(f"{len(post_only)} problem(s)")
    for submission in post_only:
        assert (f"{POST}, row {submission['row']}, column 'Код участника': no wave gives a "
                "cohort for participant") in message


def test_integral_decimals_are_read_as_their_value(study, tmp_path, baseline):
    raw, config = study
    spellings = {"4": "4,0", "3": "3.0", "2": "2 "}

    def respell(rows):
        for row in rows[1:]:
            for index in range(4, len(row)):
                row[index] = spellings.get(row[index], row[index])

    edit_rows(raw / FOLLOWUP, respell)
    assert ingest_tables(config, tmp_path / "out") == baseline


def test_non_integral_and_out_of_range_numbers_get_a_true_reason(study, tmp_path):
    raw, config = study
    header = "Я планирую собственное профессиональное развитие"

    def change(rows):
        rows[2][column_of(rows, header)] = "4,5"
        rows[3][column_of(rows, header)] = "6,0"

    edit_rows(raw / FOLLOWUP, change)
    tables = ingest_tables(config, tmp_path / "out")
    invalid = table_rows(tables["invalid_values"])
    assert (FOLLOWUP, "3", header, "value '4,5' is not one of the scale points 1..5") in invalid
    assert (FOLLOWUP, "4", header, "value '6,0' is outside the scale 1..5") in invalid
    config["cleaning"]["out_of_range"] = "error"
    message = ingest_fails(config, tmp_path / "strict")
    assert f"{FOLLOWUP}, row 4, column '{header}': value '6,0' is outside the scale 1..5" in message


def _single_pre_codes(raw: Path) -> dict[tuple[str, str], int]:
    """(institution, code) -> spreadsheet row, for codes given once in the pre file."""
    rows, _, _ = read_rows(raw / PRE)
    code, school = column_of(rows, CODE), column_of(rows, "Образовательная организация")
    seen: dict[tuple[str, str], list[int]] = {}
    for number, row in enumerate(rows[1:], start=2):
        seen.setdefault((row[school], normalise_code(row[code])), []).append(number)
    return {key: numbers[0] for key, numbers in seen.items() if len(numbers) == 1}


def test_code_used_by_two_people_is_a_collision_not_a_duplicate(study, tmp_path, baseline):
    raw, config = study
    single = _single_pre_codes(raw)
    school = next(s for s, _ in single if sum(k[0] == s for k in single) >= 2)
    # Person 1 is the one who submitted first: the earlier row of the (time-ordered) export.
    (code_a, row_a), (_, row_b) = sorted([(c, r) for (s, c), r in single.items() if s == school][:2],
                                         key=lambda pair: pair[1])
    rows, _, _ = read_rows(raw / PRE)
    typed_a = rows[row_a - 1][column_of(rows, CODE)]
    edit_rows(raw / PRE, lambda rows: rows[row_b - 1].__setitem__(column_of(rows, CODE), typed_a))
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row {row_b}, column '{CODE}': participant code '{code_a}'" in message
    assert "is used by different people (their names or e-mails differ)" in message
    assert f"person 1: {PRE} row {row_a}" in message and f"person 2: {PRE} row {row_b}" in message
    assert "cleaning.code_collisions: separate" in message
    config["cleaning"]["code_collisions"] = "separate"
    tables = ingest_tables(config, tmp_path / "separate")
    assert tables["duplicates"] == baseline["duplicates"]
    audit = tables["match_audit"].decode("utf-8")
    assert f"kept apart,code used by 2 people whose names or e-mails differ; person 2: {PRE} row {row_b}" in audit


def test_cohort_differing_between_waves_is_an_error_or_an_audited_choice(study, tmp_path, baseline):
    raw, config = study
    single = _single_pre_codes(raw)
    sheet = openpyxl.load_workbook(raw / POST, read_only=True)[SHEET]
    post_rows = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    header = post_rows[0]
    school_col, code_col, cohort_col = (header.index(h) for h in ("Образовательная организация",
                                                                  "Код участника", COHORT))
    counts: dict[tuple[str, str], int] = {}
    for row in post_rows[1:]:
        key = (row[school_col], normalise_code(row[code_col]))
        counts[key] = counts.get(key, 0) + 1
    post_row = next(n for n, row in enumerate(post_rows[1:], start=2)
                    if counts[(row[school_col], normalise_code(row[code_col]))] == 1
                    and (row[school_col], normalise_code(row[code_col])) in single)
    pre_row = single[(post_rows[post_row - 1][school_col],
                      normalise_code(post_rows[post_row - 1][code_col]))]
    labels = {"Совместная программа АмГПГУ и ХК ИРО": ("program", "Курс повышения квалификации ХК ИРО", "comparison"),
              "Курс повышения квалификации ХК ИРО": ("comparison", "Совместная программа АмГПГУ и ХК ИРО", "program")}
    was, other_label, other = labels[post_rows[post_row - 1][cohort_col]]
    edit_sheet(raw / POST, lambda s: setattr(s.cell(post_row, cohort_col + 1), "value", other_label))
    message = ingest_fails(config, tmp_path)
    assert (f"{POST}, row {post_row}, column '{COHORT}': the cohort of participant") in message
    assert f"differs between waves ({PRE} row {pre_row}: {was}; {POST} row {post_row}: {other})" in message
    config["cleaning"]["cohort_conflicts"] = "first"
    first = ingest_tables(config, tmp_path / "first")
    assert first["responses"] == baseline["responses"]
    assert (POST, str(post_row), COHORT, f"cohort '{other}' differs from '{was}' in {PRE} row "
            f"{pre_row}; '{was}' used (cleaning.cohort_conflicts: first)") in table_rows(first["invalid_values"])
    config["cleaning"]["cohort_conflicts"] = "last"
    last = ingest_tables(config, tmp_path / "last")
    assert last["responses"] != baseline["responses"]
    assert f"'{other}' used (cleaning.cohort_conflicts: last)" in last["invalid_values"].decode()


def test_years_in_management_are_checked_against_the_codebook(study, tmp_path, baseline):
    raw, config = study

    def spell(rows):
        for number, text in ((2, "пять"), (3, "5 лет"), (4, "150"), (5, "-3")):
            rows[number - 1][column_of(rows, YEARS)] = text

    edit_rows(raw / PRE, spell)
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 2, column '{YEARS}': 'пять' is not a number (optionally followed by лет" in message
    assert f"{PRE}, row 4, column '{YEARS}': '150' is outside the range 0..50" in message
    assert f"{PRE}, row 5, column '{YEARS}': '-3' is outside the range 0..50" in message
    assert "row 3," not in message and "3 problem(s)" in message


def test_years_with_unit_words_are_read(study, tmp_path, baseline):
    raw, config = study
    units = ["лет", "года", "год"]

    def add_units(rows):
        for number, row in enumerate(rows[1:]):
            row[column_of(rows, YEARS)] += " " + units[number % 3]

    edit_rows(raw / PRE, add_units)
    assert ingest_tables(config, tmp_path / "out") == baseline


def test_blank_lines_count_in_row_numbers(study, tmp_path):
    raw, config = study
    lines = (raw / PRE).read_text(encoding="utf-8").split("\n")
    lines.insert(10, "")   # row 11 is blank; the record that was in row 11 is now in row 12
    lines[11] = lines[11].replace("Скорее", "Абсолютно", 1)
    (raw / PRE).write_text("\n".join(lines), encoding="utf-8")

    def blank_and_bad(sheet):
        sheet.insert_rows(5)
        column = [c.value for c in sheet[1]].index(
            "Оцените утверждения о себе сейчас / Я планирую собственное профессиональное развитие") + 1
        sheet.cell(8, column).value = "Никак"

    edit_sheet(raw / POST, blank_and_bad)
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 12, column 'Оцените, насколько" in message
    assert (f"{POST}, row 8, column 'Оцените утверждения о себе сейчас / Я планирую собственное "
            "профессиональное развитие': label 'Никак'") in message
    assert "2 problem(s)" in message


def test_every_bad_timestamp_and_ragged_row_is_reported(study, tmp_path):
    raw, config = study
    edit_rows(raw / PRE, lambda rows: [rows[n - 1].__setitem__(0, "вчера") for n in (3, 7, 9)])
    message = ingest_fails(config, tmp_path)
    for row in (3, 7, 9):
        assert f"{PRE}, row {row}, column 'Отметка времени': 'вчера' is not a date and time" in message
    edit_rows(raw / PRE, lambda rows: [rows[n - 1].pop() for n in (4, 6)])
    message = ingest_fails(config, tmp_path)
    for row in (4, 6):
        assert f"{PRE}, row {row}: has 30 cells where the header has 31" in message


def test_problems_are_capped_with_a_count_of_the_rest(study, tmp_path):
    raw, config = study
    edit_rows(raw / PRE, lambda rows: [row.__setitem__(0, "вчера") for row in rows[1:]])
    message = ingest_fails(config, tmp_path)
    assert message.startswith("250 problem(s)") and message.count("\n  - ") == 50
    assert message.endswith("... and 200 more problem(s) of the same kinds")


def test_a_large_cell_is_read_and_shown_shortened(study, tmp_path, monkeypatch):
    raw, config = study
    column = "Оцените, насколько вы согласны с утверждениями о себе [Я планирую собственное профессиональное развитие]"
    edit_rows(raw / PRE, lambda rows: rows[4].__setitem__(column_of(rows, column), "ж" * 1_000_000))
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 5, column '{column}': label 'жжж" in message
    assert "... (1000000 characters) is not a label" in message and len(message) < 1000
    monkeypatch.setattr(readers, "MAX_CELL_CHARS", 500_000)
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 5: cannot be read as CSV (field larger than field limit" in message


def test_registry_and_recipients_saved_by_excel_are_read(study, tmp_path, baseline):
    raw, config = study
    registry = raw / "institutions.csv"
    edit_rows(registry, lambda rows: None)
    rows, _, _ = read_rows(registry)
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(rows)
    registry.write_bytes(buffer.getvalue().encode("cp1251"))
    assert load_registry(registry).equals(load_registry(REPO / "data" / "raw" / "institutions.csv"))
    assert ingest_tables(config, tmp_path / "out") == baseline
    recipients = tmp_path / "recipients.csv"
    text = (REPO / "config" / "recipients.csv").read_text(encoding="utf-8")
    recipients.write_bytes(text.replace(",", ";").encode("cp1251"))
    assert load_recipients(recipients) == load_recipients(REPO / "config" / "recipients.csv")


def test_yaml_syntax_errors_name_line_and_column(tmp_path):
    broken = (REPO / "config" / "codebook.yaml").read_text(encoding="utf-8").replace(
        "retrospective_marker: \"до", "retrospective_marker:\t\"до")
    line = broken[: broken.index("retrospective_marker:\t")].count("\n") + 1
    (tmp_path / "codebook.yaml").write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_codebook(tmp_path / "codebook.yaml")
    assert f"codebook.yaml, line {line}, column 22: not valid YAML" in str(error.value)


STEP = """
import sys
from dpo_eval.core.errors import InputError
from dpo_eval.core.io import step_log
with step_log(sys.argv[1]):
    if sys.argv[2] == "user":
        raise InputError("a.csv", 3, "q", "bad cell", "correct it")
    raise KeyError("a bug")
"""


@pytest.mark.parametrize("kind", ["user", "bug"])
def test_user_error_prints_one_clean_message_and_a_bug_its_traceback(tmp_path, kind):
    log = tmp_path / "step.log"
    result = subprocess.run([sys.executable, "-c", STEP, str(log), kind], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 1
    assert "Traceback" in log.read_text(encoding="utf-8")
    if kind == "user":
        assert "Traceback" not in result.stderr
        assert result.stderr.count("a.csv, row 3, column 'q': bad cell. What to do: correct it.") == 1
    else:
        assert "Traceback" in result.stderr and "KeyError: 'a bug'" in result.stderr


@pytest.mark.pipeline
def test_snakemake_reports_a_code_collision_cleanly(tmp_path):
    project = use_test_secret(copy_project(tmp_path / "project"))
    raw = project / "data" / "raw"
    single = _single_pre_codes(raw)
    school = next(s for s, _ in single if sum(k[0] == s for k in single) >= 2)
    (_, row_a), (_, row_b) = sorted([(c, r) for (s, c), r in single.items() if s == school][:2],
                                    key=lambda pair: pair[1])
    edit_rows(raw / PRE, lambda rows: rows[row_b - 1].__setitem__(
        column_of(rows, CODE), rows[row_a - 1][column_of(rows, CODE)]))
    result = run_snakemake(project, "--cores", "1", "results/clean/responses.csv", check=False)
    console = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in console and 'File "' not in console
    expected = f"data/raw/{PRE}, row {row_b}, column '{CODE}': participant code"
    assert console.count(expected) == 1
    assert "Traceback" in (project / "logs" / "ingest.log").read_text(encoding="utf-8")
    assert not list((project / "results").rglob("*.csv"))


@pytest.mark.pipeline
def test_dag_build_errors_print_one_clean_message(tmp_path):
    project = copy_project(tmp_path / "project")
    config_path = project / "config" / "config.yaml"
    good = config_path.read_text(encoding="utf-8")
    config_path.write_text(good.replace("  min_cell: 5", "\tmin_cell: 5"), encoding="utf-8")
    line = good[: good.index("  min_cell: 5")].count("\n") + 1
    result = run_snakemake(project, "-n", check=False)
    assert result.returncode == 1 and 'File "' not in result.stderr + result.stdout
    assert result.stderr.startswith(f"ERROR: config/config.yaml, line {line}, column 1: not valid YAML")
    config_path.write_text(good, encoding="utf-8")
    codebook = project / "config" / "codebook.yaml"
    codebook.write_text(codebook.read_text(encoding="utf-8").replace(
        "retrospective_marker: \"", "retrospective_marker:\t\""), encoding="utf-8")
    result = run_snakemake(project, "-n", check=False)
    assert result.returncode == 1 and 'File "' not in result.stderr + result.stdout
    assert result.stderr.count("config/codebook.yaml, line ") == 1
    shutil.copy(REPO / "config" / "codebook.yaml", codebook)
    registry = project / "data" / "raw" / "institutions.csv"
    text = registry.read_text(encoding="utf-8")
    registry.write_bytes(text.replace(",", ";").encode("cp1251"))
    assert "institution_report" in run_snakemake(project, "-n").stdout
    registry.write_bytes(text.replace("SCH002,", "SCH001,").encode("utf-8"))
    result = run_snakemake(project, "-n", check=False)
    assert result.returncode == 1 and 'File "' not in result.stderr + result.stdout
    assert result.stderr.count("data/raw/institutions.csv, row 5, column 'id': institution id "
                               "'SCH001' occurs in rows 4, 5") == 1


@pytest.mark.pipeline
def test_registry_and_recipients_problems_stop_the_dag_build_cleanly(tmp_path):
    """A registry row copied under a new id, a recipient name with a line break, a school
    without a recipient: each stops `snakemake -n` with one message naming file, row and
    column, no traceback and nothing written; delivery.no_recipient accepts the last."""
    project = copy_project(tmp_path / "project")
    registry, recipients = project / "data" / "raw" / "institutions.csv", project / "config" / "recipients.csv"
    good_registry, good_recipients = registry.read_bytes(), recipients.read_bytes()

    def dag_error() -> str:
        result = run_snakemake(project, "-n", check=False)
        console = result.stdout + result.stderr
        assert result.returncode == 1 and "Traceback" not in console and 'File "' not in console, console[-3000:]
        assert not (project / "results").exists()
        return result.stderr

    lines = good_registry.decode("utf-8").splitlines(keepends=True)
    copied = lines[3].replace("SCH001,", "SCH900,", 1)           # row 4 (SCH001) copied as row 64
    registry.write_text("".join(lines) + copied, encoding="utf-8")
    assert dag_error().count("data/raw/institutions.csv, row 64, column 'name': institution name (ignoring "
                             "case and spaces) 'МБОУ СОШ № 3 (г. Хабаровск)' occurs in rows 4, 64") == 1
    registry.write_bytes(good_registry)

    recipients.write_text(good_recipients.decode("utf-8").replace(
        "SCH001,МБОУ СОШ № 3 (г. Хабаровск),", 'SCH001,"МБОУ СОШ № 3\n(г. Хабаровск)",'), encoding="utf-8")
    assert ("config/recipients.csv, row 4, column 'name': 'МБОУ СОШ № 3\\n(г. Хабаровск)' holds the invisible "
            "control character U+000A") in dag_error()

    recipients.write_text("".join(line for line in good_recipients.decode("utf-8").splitlines(keepends=True)
                                  if not line.startswith("SCH002,")), encoding="utf-8")
    assert ("config/recipients.csv, column 'institution': school 'SCH002' has a report but no recipient. "
            "What to do: add a row for it, or list its id under delivery.no_recipient") in dag_error()
    config_path = project / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["delivery"]["no_recipient"] = ["SCH002"]
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert run_snakemake(project, "-n", check=False).returncode == 0


def test_needs_survey_columns_are_checked_too(study, tmp_path):
    raw, config = study
    needs = raw / "needs_assessment_google.csv"
    old = "Оцените важность направлений для программы повышения квалификации [Проектное управление]"
    new = "Оцените важность направлений для программы повышения квалификации [Проектный менеджмент]"
    edit(needs, old, new)
    outputs = {"needs": str(tmp_path / "results" / "needs.csv"),
               "needs_formats": str(tmp_path / "results" / "needs_formats.csv")}
    with pytest.raises(UserError) as error:
        ingest_step.ingest_needs(NeedsIngestSettings.from_config(config), config["registry"],
                                        config["codebook"], outputs, results_dir=tmp_path / "results")
    assert (f"needs_assessment_google.csv, row 1: no column for need area nd_projects "
            f"'Проектное управление' (closest header found: '{new}')") in str(error.value)
    assert not (tmp_path / "results").exists()

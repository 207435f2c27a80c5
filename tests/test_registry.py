"""The one reader of the institutions registry and of the recipients file (dpo_eval.core.registry):
Excel's encodings and separators, and one clear message per problem, naming file, row and column."""

import csv
import io

import pytest

from conftest import REPO
from dpo_eval.core.errors import InputError, UserError
from dpo_eval.core.registry import check_recipient_coverage, load_recipients, load_registry

HEADER = "id,name,name_en,municipality,municipality_en,type,settlement,language,email\n"
ROWS = ["UNI,Университет,University,г. Хабаровск,Khabarovsk,university,urban,ru,u@x.org",
        "SCH1,МБОУ СОШ № 1,School No. 1,г. Хабаровск,Khabarovsk,school,urban,ru,s1@x.org",
        "SCH2,МБОУ СОШ № 2,,Район имени Лазо,,school,rural,en,"]
RECIPIENTS = ("institution,name,emails,language,report\n"
              "UNI,Университет,u@x.org,ru,evaluation\n"
              "SCH1,МБОУ СОШ № 1,d@s1.x.org;z@s1.x.org,ru,institution\n"
              "SCH2,МБОУ СОШ № 2,d@s2.x.org,en,institution\n")


def write(path, text, encoding="utf-8", separator=","):
    """``text`` (CSV with ',') saved as Excel saves it with ``separator`` in ``encoding``."""
    if separator != ",":
        buffer = io.StringIO(newline="")
        csv.writer(buffer, delimiter=separator, lineterminator="\r\n").writerows(csv.reader(io.StringIO(text)))
        text = buffer.getvalue()
    path.write_bytes(text.encode(encoding))
    return path


def message(error) -> str:
    return str(error.value)


def test_a_registry_saved_by_excel_reads_as_the_utf8_one(tmp_path):
    utf8 = load_registry(write(tmp_path / "a.csv", HEADER + "\n".join(ROWS) + "\n"))
    excel = load_registry(write(tmp_path / "b.csv", HEADER + "\n".join(ROWS) + "\n", "cp1251", ";"))
    assert excel.equals(utf8)
    assert utf8["name_en"].tolist() == ["University", "School No. 1", "МБОУ СОШ № 2"]   # filled from name
    assert utf8["municipality_en"].tolist()[-1] == "Район имени Лазо"


def test_the_demo_registry_and_recipients_are_valid():
    registry = load_registry(REPO / "data" / "raw" / "institutions.csv")
    recipients = load_recipients(REPO / "config" / "recipients.csv", set(registry["id"]))
    check_recipient_coverage(registry, recipients, (), REPO / "config" / "recipients.csv")
    assert len(recipients) == len(registry) == 62


@pytest.mark.parametrize("row, expected", [
    ("SCH1,Другая школа,,г. Хабаровск,,school,urban,ru,", "row 5, column 'id': institution id 'SCH1' occurs in rows 3, 5"),
    ("SCH9,мбоу  сош № 1,,г. Хабаровск,,school,urban,ru,",
     "row 5, column 'name': institution name (ignoring case and spaces) 'мбоу  сош № 1' occurs in rows 3, 5"),
    ("SCH9,Школа 9,,,,school,urban,ru,", "row 5, column 'municipality': is empty"),
    ("SCH9,Школа 9,,г. Хабаровск,,college,urban,ru,", "row 5, column 'type': 'college' is not one of "
                                                      "university, iro, school"),
    ("SCH9,Школа 9,,г. Хабаровск,,school,town,de,", "row 5, column 'language': 'de' is not one of ru, en"),
    ('SCH9,"Школа\n9",,г. Хабаровск,,school,urban,ru,', "row 5, column 'name': 'Школа\\n9' holds the invisible "
                                                        "control character U+000A"),
])
def test_registry_problems_are_named_by_row_and_column(tmp_path, row, expected):
    path = write(tmp_path / "institutions.csv", HEADER + "\n".join([*ROWS, row]) + "\n")
    with pytest.raises(UserError) as error:
        load_registry(path)
    assert f"{path}, {expected}" in message(error)


def test_every_registry_problem_is_listed_at_once(tmp_path):
    rows = [*ROWS, "SCH1,МБОУ СОШ № 2,,г. Хабаровск,,school,urban,ru,", "SCH3,,,,,school,urban,ru,"]
    with pytest.raises(UserError) as error:
        load_registry(write(tmp_path / "institutions.csv", HEADER + "\n".join(rows) + "\n"))
    # Row 5: a second SCH1 and a second "МБОУ СОШ № 2"; row 6: no name, no municipality.
    assert message(error).startswith("4 problem(s) in the input data:")
    assert "row 6, column 'name': is empty" in message(error)
    assert "column 'id': institution id 'SCH1'" in message(error)
    assert "column 'name': institution name (ignoring case and spaces) 'МБОУ СОШ № 2'" in message(error)


def test_recipients_saved_by_excel_and_their_problems(tmp_path):
    ids = {"UNI", "SCH1", "SCH2"}
    utf8 = load_recipients(write(tmp_path / "a.csv", RECIPIENTS), ids)
    assert load_recipients(write(tmp_path / "b.csv", RECIPIENTS, "cp1251", ";"), ids) == utf8
    assert utf8[1].addresses == ("d@s1.x.org", "z@s1.x.org")
    bad = RECIPIENTS + ('SCH3,"Директор\r\nBcc: all@x.org",bad address,fr,other\n'
                        "SCH1,МБОУ СОШ № 1,a@x.org;a@x.org,ru,institution\n")
    path = write(tmp_path / "c.csv", bad)
    with pytest.raises(UserError) as error:
        load_recipients(path, ids)
    text = message(error)
    for expected in ["row 5, column 'name': 'Директор\\r\\nBcc: all@x.org' holds the invisible control character U+000D",
                     "row 5, column 'emails': 'bad address' is not a valid e-mail address",
                     "row 5, column 'language': 'fr' is not ru or en",
                     "row 5, column 'report': 'other' is not one of institution, evaluation",
                     "row 5, column 'institution': 'SCH3' is not in the institutions registry",
                     "row 6, column 'institution': institution 'SCH1' occurs in rows 3, 6",
                     "row 6, column 'emails': an address occurs twice"]:
        assert f"{path}, {expected}" in text, expected


def test_an_empty_recipients_file_gets_advice_about_recipients(tmp_path):
    with pytest.raises(InputError) as empty:
        load_recipients(write(tmp_path / "r.csv", ""))
    assert "is empty" in message(empty) and "the recipients, one institution per row" in message(empty)
    assert "survey" not in message(empty)
    with pytest.raises(InputError) as header_only:
        load_recipients(write(tmp_path / "r.csv", "institution,name,emails,language,report\n"))
    assert "has a header but no rows" in message(header_only) and "survey" not in message(header_only)


def test_every_school_with_a_report_has_a_recipient_or_is_listed(tmp_path):
    registry = load_registry(write(tmp_path / "institutions.csv", HEADER + "\n".join(ROWS) + "\n"))
    path = write(tmp_path / "recipients.csv", RECIPIENTS.replace("SCH2,МБОУ СОШ № 2,d@s2.x.org,en,institution\n", ""))
    recipients = load_recipients(path, set(registry["id"]))
    with pytest.raises(InputError) as missing:
        check_recipient_coverage(registry, recipients, (), path)
    assert message(missing).startswith(f"{path}, column 'institution': school 'SCH2' has a report but no recipient")
    assert "delivery.no_recipient" in message(missing)
    check_recipient_coverage(registry, recipients, ("SCH2",), path)
    with pytest.raises(InputError) as unknown:
        check_recipient_coverage(registry, recipients, ("SCH2", "SCH7"), path)
    assert "delivery.no_recipient lists 'SCH7', which is not a school of the institutions registry" in message(unknown)

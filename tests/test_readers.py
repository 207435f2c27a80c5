"""Readers of CSV and XLSX exports, and their errors."""

import pytest
from openpyxl import Workbook

from dpo_eval.core.errors import InputError, InputErrors
from dpo_eval.core.readers import read_export

HEADER = ["Отметка времени", "Код участника", "Вопрос [Пункт]"]
ROW = ["15.09.2025 10:00:00", "ХБ-001-01", "Скорее согласна"]


@pytest.mark.parametrize("encoding,delimiter", [("utf-8", ","), ("utf-8-sig", ","),
                                                ("cp1251", ";"), ("utf-8", "\t")])
def test_csv_encodings_and_separators(tmp_path, encoding, delimiter):
    path = tmp_path / "export.csv"
    path.write_bytes("\r\n".join(delimiter.join(r) for r in (HEADER, ROW)).encode(encoding))
    table = read_export(path)
    assert list(table.frame.columns) == HEADER
    assert table.frame.loc[2].tolist() == ROW
    assert table.encoding == ("cp1251" if encoding == "cp1251" else "utf-8")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty.csv: is empty"):
        read_export(path)


def test_duplicated_header(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"row 1, column 'a': duplicated header \(columns 1 and 3\)"):
        read_export(path)


def test_ragged_row_is_located(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3\n", encoding="utf-8")
    with pytest.raises(InputError, match="row 3: has 1 cells where the header has 2"):
        read_export(path)


def test_missing_file_names_the_config_key(tmp_path):
    with pytest.raises(InputError, match="does not exist.*config/config.yaml"):
        read_export(tmp_path / "nowhere.csv")


def workbook(path, sheets):
    book = Workbook()
    book.remove(book.active)
    for name in sheets:
        sheet = book.create_sheet(name)
        sheet.append(HEADER)
        sheet.append(ROW)
    book.save(path)


def test_xlsx_sheet_by_name(tmp_path):
    path = tmp_path / "export.xlsx"
    workbook(path, ["Ответы", "Сводка"])
    assert read_export(path, sheet="Ответы").frame.loc[2].tolist() == ROW
    with pytest.raises(InputError, match=r"several sheets \(Ответы, Сводка\).*set `sheet:`"):
        read_export(path)
    with pytest.raises(InputError, match="has no sheet 'Лист1'"):
        read_export(path, sheet="Лист1")


def test_csv_rows_are_numbered_as_a_spreadsheet_shows_them(tmp_path):
    """Blank lines count, and a quoted cell spanning two lines is still one row."""
    path = tmp_path / "export.csv"
    multiline = ['15.09.2025 10:01:00', 'ХБ-001-02', '"Скорее\nсогласна"']
    lines = [",".join(HEADER), ",".join(ROW), "", ",,", ",".join(multiline), ",".join(ROW)]
    path.write_text("\n".join(lines), encoding="utf-8")
    table = read_export(path)
    assert table.frame.index.tolist() == [2, 5, 6]
    assert table.frame.loc[5, "Вопрос [Пункт]"] == "Скорее\nсогласна"


def test_xlsx_rows_are_numbered_as_a_spreadsheet_shows_them(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    for row in (HEADER, ROW, [None, None, None], ROW):
        sheet.append(row)
    workbook.save(tmp_path / "export.xlsx")
    assert read_export(tmp_path / "export.xlsx").frame.index.tolist() == [2, 4]


def test_every_ragged_row_is_reported(tmp_path):
    path = tmp_path / "export.csv"
    lines = [",".join(HEADER), ",".join(ROW[:2]), ",".join(ROW), ",".join(ROW + ["x"])]
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputErrors) as error:
        read_export(path)
    assert "export.csv, row 2: has 2 cells where the header has 3" in str(error.value)
    assert "export.csv, row 4: has 4 cells where the header has 3" in str(error.value)

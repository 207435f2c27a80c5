"""Readers of CSV and XLSX exports, and their errors."""

import zipfile
from datetime import datetime

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


def _rewrite_sheet(path, target, change):
    """A copy of the workbook at ``path`` with its first worksheet's XML passed through ``change``."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as copy:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = change(data)
            copy.writestr(item, data)


def test_xlsx_cells_are_read_as_text_whichever_parser_reads_the_sheet(tmp_path):
    """Numbers (codes Excel turned into numbers), dates, empty cells and rows come out alike
    from the fast parser and from openpyxl, which reads a sheet written in an unusual way
    (here a cell whose reference is not its first attribute)."""
    book = Workbook()
    sheet = book.active
    rows = [HEADER, [datetime(2025, 9, 15, 10, 0), 100102, "Скорее согласна"],
            [None, None, None], [datetime(2025, 9, 16, 11, 30, 5), 100103.0, None],
            ["15.09.2025 10:00:00", "ХБ-001-01", "&amp; <а> \"б\""]]
    for row in rows:
        sheet.append(row)
    path = tmp_path / "export.xlsx"
    book.save(path)
    fast = read_export(path).frame
    assert fast.index.tolist() == [2, 4, 5]
    assert fast.loc[2].tolist() == ["2025-09-15 10:00:00", "100102", "Скорее согласна"]
    assert fast.loc[4].tolist() == ["2025-09-16 11:30:05", "100103", ""]
    assert fast.loc[5].tolist() == rows[4]
    unusual = tmp_path / "unusual.xlsx"
    _rewrite_sheet(path, unusual, lambda xml: xml.replace(b'<c r="C4" t="n">', b'<c t="n" r="C4">')
                   .replace(b'<c r="B4"', b'<c s="0" r="B4"'))
    assert b's="0" r="B4"' in zipfile.ZipFile(unusual).read("xl/worksheets/sheet1.xml")
    assert read_export(unusual).frame.equals(fast)

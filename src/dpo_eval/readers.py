"""Readers for the survey exports researchers really have: CSV in any of the usual encodings and
separators, and XLSX workbooks. Every cell comes back as text, exactly as exported."""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from dpo_eval.errors import InputError, raise_all

ENCODINGS = ("utf-8-sig", "cp1251")
DELIMITERS = ",;\t"
# Largest CSV cell read (Python's csv module stops at 128 KiB). Long free-text answers fit; a
# larger "cell" is almost always an unclosed quote swallowing the rest of the file.
MAX_CELL_CHARS = 8 * 1024 * 1024


@dataclass(frozen=True)
class RawTable:
    """A raw export: its cells as text, and where it came from (for error messages)."""

    path: Path
    frame: pd.DataFrame
    encoding: str
    delimiter: str | None
    sheet: str | None

    @property
    def name(self) -> str:
        return self.path.name


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    # NUL bytes occur in UTF-16 text and in binary files, never in a CSV in UTF-8 or cp1251.
    if b"\x00" in data[:65536]:
        raise InputError(path, None, None, "is not a text file in UTF-8 or Windows-1251 (it "
                         "looks like UTF-16 or a binary file)",
                         "save it as 'CSV UTF-8' (Excel) or export XLSX from the form")
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "cp1251" and sum(ch.isalpha() for ch in text) < len(text) * 0.05:
            break
        return text, encoding.replace("utf-8-sig", "utf-8")
    raise InputError(path, None, None,
                     "cannot be decoded as UTF-8 or Windows-1251 (cp1251)",
                     "re-export the file as UTF-8 CSV or XLSX")


def _sniff_delimiter(path: Path, text: str) -> str:
    header = text.splitlines()[0]
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        if counts[best] == 0:
            raise InputError(path, 1, None, "has a single column: no ',', ';' or tab separator "
                             "found in the header", "export the survey as CSV with one column "
                             "per question") from None
        return best


def _check_header(path: Path, header: list[str]) -> None:
    first: dict[str, int] = {}
    problems = []
    for index, name in enumerate(header):
        key = name.strip()
        if not key:
            continue
        if key in first:
            problems.append(InputError(path, 1, name, f"duplicated header (columns "
                                       f"{first[key] + 1} and {index + 1})",
                                       "rename or remove one of the two columns"))
        else:
            first[key] = index
    raise_all(problems)


def _frame(path: Path, header: list[str], records: list[tuple[int, list[str]]]) -> pd.DataFrame:
    """The responses as text, indexed by their spreadsheet row numbers; every row whose cells
    do not line up with the header is reported at once."""
    problems = []
    for number, cells in records:
        extra = [cell for cell in cells[len(header):] if cell.strip()]
        if len(cells) < len(header) or extra:
            problems.append(InputError(path, number, None,
                                       f"has {len(cells)} cells where the header has {len(header)}",
                                       "check the separator and quoting of this row (a cell "
                                       "holding the separator must be in double quotes)"))
    raise_all(problems)
    frame = pd.DataFrame([cells[: len(header)] for _, cells in records],
                         columns=[h.strip() for h in header], dtype=str)
    frame.index = pd.Index([number for number, _ in records], name="row")
    return frame


@contextlib.contextmanager
def _field_limit(limit: int):
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, limit))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _csv_records(path: Path, text: str, delimiter: str) -> list[list[str]]:
    """Every record of the CSV text; record *n* is row *n* in a spreadsheet program."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[list[str]] = []
    with _field_limit(MAX_CELL_CHARS):
        try:
            for record in reader:
                records.append(record)
        except csv.Error as error:
            raise InputError(path, len(records) + 1, None,
                             f"cannot be read as CSV ({error}; cells are limited to "
                             f"{MAX_CELL_CHARS:,} characters)",
                             "look for a double quote that is opened and never closed in this "
                             "row, or shorten the cell") from None
    return records


def _no_rows(path: Path, content: str | None, where: str = "") -> InputError:
    """A file (or sheet) with a header and nothing below it: a survey export without responses,
    or a registry (``content`` says what it should hold) without rows."""
    if content is None:
        return InputError(path, None, None, f"{where}has a header but no responses",
                          "check that the export contains the submitted answers")
    return InputError(path, None, None, f"{where}has a header but no rows", f"add {content} below the header")


def _empty(path: Path, content: str | None, where: str = "") -> InputError:
    if content is None:
        return InputError(path, None, None, f"{where}is empty", "export the survey responses again")
    return InputError(path, None, None, f"{where}is empty",
                      f"write {content} into it, below a header row, or correct its path in config/config.yaml")


def read_csv(path: Path, content: str | None = None) -> RawTable:
    data = path.read_bytes()
    if not data.strip():
        raise _empty(path, content)
    text, encoding = _decode(path, data)
    delimiter = _sniff_delimiter(path, text)
    rows = _csv_records(path, text, delimiter)
    header = rows[0]
    _check_header(path, header)
    body = [(number, r) for number, r in enumerate(rows[1:], start=2)
            if any(cell.strip() for cell in r)]
    if not body:
        raise _no_rows(path, content)
    return RawTable(path, _frame(path, header, body), encoding, delimiter, None)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_xlsx(path: Path, sheet: str | None, content: str | None = None) -> RawTable:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a damaged or non-XLSX file
        raise InputError(path, None, None, f"is not a readable XLSX workbook ({exc})",
                         "open it in Excel and save it again as .xlsx") from exc
    try:
        names = workbook.sheetnames
        if sheet is None:
            if len(names) > 1:
                raise InputError(path, None, None,
                                 f"has several sheets ({', '.join(names)}) and no sheet is named "
                                 "in the config", "set `sheet:` for this file in config/config.yaml")
            sheet = names[0]
        elif sheet not in names:
            raise InputError(path, None, None, f"has no sheet '{sheet}' (sheets: {', '.join(names)})",
                             "correct `sheet:` in config/config.yaml")
        rows = [[_cell_text(v) for v in row] for row in workbook[sheet].iter_rows(values_only=True)]
    finally:
        workbook.close()
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise _empty(path, content, f"sheet '{sheet}' ")
    header = rows[0]
    _check_header(path, header)
    # A sheet's rows are all as long as its widest row: pad, never a ragged-row error here.
    body = [(number, r + [""] * (len(header) - len(r))) for number, r in enumerate(rows[1:], start=2)
            if any(c.strip() for c in r)]
    if not body:
        raise _no_rows(path, content, f"sheet '{sheet}' ")
    return RawTable(path, _frame(path, header, body), "xlsx", None, sheet)


def read_export(path: str | Path, sheet: str | None = None, content: str | None = None) -> RawTable:
    """Read one survey export (CSV or XLSX) with every cell as text; rows are numbered as a
    spreadsheet shows them (header = row 1). ``content`` says what a file that is not a survey
    export holds (e.g. "the recipients, one institution per row"), for the advice on an empty one."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, None, "does not exist",
                         "check the path in config/config.yaml (waves, needs, registry or delivery.recipients)")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path, sheet, content)
    return read_csv(path, content)

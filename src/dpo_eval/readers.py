"""Readers for the survey exports researchers really have: CSV in any of the usual encodings and
separators, and XLSX workbooks. Every cell comes back as text, exactly as exported."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from dpo_eval.errors import InputError

ENCODINGS = ("utf-8-sig", "cp1251")
DELIMITERS = ",;\t"


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
    seen: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip()
        if not key:
            continue
        if key in seen:
            raise InputError(path, 1, name, f"duplicated header (columns {seen[key] + 1} and "
                             f"{index + 1})", "rename or remove one of the two columns")
        seen[key] = index


def read_csv(path: Path) -> RawTable:
    data = path.read_bytes()
    if not data.strip():
        raise InputError(path, None, None, "is empty", "export the survey responses again")
    text, encoding = _decode(path, data)
    delimiter = _sniff_delimiter(path, text)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header, body = rows[0], [r for r in rows[1:] if any(cell.strip() for cell in r)]
    _check_header(path, header)
    if not body:
        raise InputError(path, None, None, "has a header but no responses",
                         "check that the export contains the submitted answers")
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InputError(path, number, None,
                             f"has {len(row)} cells where the header has {len(header)}",
                             "check the separator and quoting of this row")
    frame = pd.DataFrame(body, columns=[h.strip() for h in header], dtype=str)
    frame.index = pd.RangeIndex(2, len(body) + 2, name="row")
    return RawTable(path, frame, encoding, delimiter, None)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_xlsx(path: Path, sheet: str | None) -> RawTable:
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
        raise InputError(path, None, None, f"sheet '{sheet}' is empty",
                         "export the survey responses again")
    header = rows[0]
    _check_header(path, header)
    body = [r + [""] * (len(header) - len(r)) for r in rows[1:] if any(c.strip() for c in r)]
    if not body:
        raise InputError(path, None, None, f"sheet '{sheet}' has a header but no responses",
                         "check that the export contains the submitted answers")
    frame = pd.DataFrame([r[: len(header)] for r in body], columns=[h.strip() for h in header],
                         dtype=str)
    frame.index = pd.RangeIndex(2, len(body) + 2, name="row")
    return RawTable(path, frame, "xlsx", None, sheet)


def read_export(path: str | Path, sheet: str | None = None) -> RawTable:
    """Read one survey export (CSV or XLSX) with every cell as text; rows are numbered as a
    spreadsheet shows them (header = row 1)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, None, "does not exist",
                         "check the file name under `waves:` or `needs:` in config/config.yaml")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path, sheet)
    return read_csv(path)

"""Readers for the survey exports researchers really have: CSV in any of the usual encodings and
separators, and XLSX workbooks. Every cell comes back as text, exactly as exported."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from dpo_eval.core.distinct import number_distinct
from dpo_eval.core.errors import InputError, raise_all

ENCODINGS = ("utf-8-sig", "cp1251")
DELIMITERS = ",;\t"
# Largest CSV cell read (Python's csv module stops at 128 KiB). Long free-text answers fit; a
# larger "cell" is almost always an unclosed quote swallowing the rest of the file.
MAX_CELL_CHARS = 8 * 1024 * 1024
TEXT_SAMPLE_CHARS = 1024 * 1024


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
        # Text has letters; a binary file decoded as cp1251 has few (judged on its start).
        sample = text[:TEXT_SAMPLE_CHARS]
        if encoding == "cp1251" and sum(ch.isalpha() for ch in sample) < len(sample) * 0.05:
            break
        return text, encoding.replace("utf-8-sig", "utf-8")
    raise InputError(path, None, None,
                     "cannot be decoded as UTF-8 or Windows-1251 (cp1251)",
                     "re-export the file as UTF-8 CSV or XLSX")


def _sniff_delimiter(path: Path, text: str) -> str:
    end = text.find("\n")
    header = text[:end if end >= 0 else len(text)].splitlines()[0]
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


BATCH_ROWS = 20_000


class _Columns:
    """Cells gathered column by column in batches, each distinct text of a column stored once
    (answers repeat a handful of labels): memory grows with 4 bytes a cell, not a string."""

    def __init__(self, width: int):
        self.codes: list[list[np.ndarray]] = [[] for _ in range(width)]
        self.distinct: list[dict[str, int]] = [{} for _ in range(width)]

    def add(self, rows: list[list[str]]) -> None:
        for codes, distinct, column in zip(self.codes, self.distinct, zip(*rows)):
            positions, uniques = pd.factorize(np.array(column, dtype=object))
            mapping = np.array([distinct.setdefault(text, len(distinct)) for text in uniques],
                               dtype=np.int64)
            codes.append(mapping[positions])

    def frame(self, header: list[str], numbers: list[int]) -> pd.DataFrame:
        columns = {}
        for index, (codes, distinct) in enumerate(zip(self.codes, self.distinct)):
            texts = np.empty(len(distinct), dtype=object)
            texts[:] = list(distinct)
            columns[index] = texts[np.concatenate(codes)] if codes else texts[:0]
        frame = pd.DataFrame(columns)
        frame.columns = [h.strip() for h in header]
        frame.index = pd.Index(numbers, name="row")
        return frame


def _misaligned(path: Path, width: int, batch: list[list[str]], numbers: np.ndarray,
                lengths: np.ndarray) -> list[InputError]:
    """Rows whose cells do not line up with the header (fewer cells, or more non-empty ones)."""
    problems = []
    for position in np.flatnonzero(lengths != width):
        cells = batch[position]
        if len(cells) < width or any(cell.strip() for cell in cells[width:]):
            problems.append(InputError(path, int(numbers[position]), None,
                                       f"has {len(cells)} cells where the header has {width}",
                                       "check the separator and quoting of this row (a cell "
                                       "holding the separator must be in double quotes)"))
    return problems


@contextlib.contextmanager
def _field_limit(limit: int):
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, limit))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` with their endings, cut at "\n" only (like a file opened with
    newline=""), without copying the text as io.StringIO does."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _batches(path: Path, text: str, delimiter: str) -> Iterator[tuple[int, list[list[str]]]]:
    """The CSV's records in batches with the number of each batch's first record; record *n* is
    row *n* in a spreadsheet program (the header is record 1)."""
    # A file with old Mac line ends ("\r" only) is read whole, as csv reads such a file.
    source = _lines(text) if "\n" in text else io.StringIO(text, newline="")
    reader = csv.reader(source, delimiter=delimiter)
    count, first, batch = 0, 1, []
    with _field_limit(MAX_CELL_CHARS):
        try:
            for record in reader:
                batch.append(record)
                count += 1
                if len(batch) == BATCH_ROWS:
                    yield first, batch
                    first, batch = count + 1, []
        except csv.Error as error:
            raise InputError(path, count + 1, None,
                             f"cannot be read as CSV ({error}; cells are limited to "
                             f"{MAX_CELL_CHARS:,} characters)",
                             "look for a double quote that is opened and never closed in this "
                             "row, or shorten the cell") from None
    if batch:
        yield first, batch


def _csv_table(path: Path, text: str, delimiter: str, content: str | None = None) -> pd.DataFrame:
    """The responses as text, indexed by their spreadsheet row numbers (blank rows left out);
    every row whose cells do not line up with the header is reported at once."""
    header, columns, numbers, problems = None, None, [], []
    for first, batch in _batches(path, text, delimiter):
        if header is None:
            header, batch, first = batch[0], batch[1:], 2
            _check_header(path, header)
            columns = _Columns(len(header))
        width = len(header)
        filled = np.array([bool("".join(cells).strip()) for cells in batch], dtype=bool)
        batch = [cells for cells, keep in zip(batch, filled) if keep]
        batch_numbers = np.flatnonzero(filled) + first
        lengths = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        problems += _misaligned(path, width, batch, batch_numbers, lengths)
        if not problems:
            columns.add([cells if len(cells) == width else cells[:width] for cells in batch])
            numbers += batch_numbers.tolist()
    raise_all(problems)
    if not numbers:
        raise _no_rows(path, content)
    return columns.frame(header, numbers)


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
    if not data or data.isspace():
        raise _empty(path, content)
    text, encoding = _decode(path, data)
    del data
    delimiter = _sniff_delimiter(path, text)
    return RawTable(path, _csv_table(path, text, delimiter, content), encoding, delimiter, None)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# A cell of a worksheet's XML as every common writer (Excel, LibreOffice, openpyxl, form
# services) writes it: the reference is its first attribute. The XML (bytes, never decoded
# whole) is cut at the references by one re.split per chunk (C speed, the reference's letters
# come out with it); a regular expression per cell would dominate the time of a large wave. A
# cell's row is that of the ``<row>`` element before it (read from the distinct pieces only).
_CELL_REFERENCE = re.compile(rb'<c r="([A-Z]{1,3})[0-9]+"')
_ROW_START = re.compile(r"<row\b([^>]*)>")
_ROW_NUMBER = re.compile(r'\br="([0-9]+)"')
_TYPE = re.compile(r'\bt="(\w+)"')
_STYLE = re.compile(r'\bs="(\d+)"')
_VALUE = re.compile(r"<v(?:\s[^>]*)?>(.*?)</v>", re.S)
_TEXT = re.compile(r"<t(?:\s[^>]*)?>(.*?)</t>|<t\s*/>", re.S)
_PHONETIC = re.compile(r"<rPh\b.*?</rPh>", re.S)
CHUNK_BYTES = 8 * 1024 * 1024


class _Unusual(Exception):
    """A worksheet written in a way the fast parser does not read (openpyxl then reads it)."""


def _unescape(text: str, known: dict[str, str]) -> str:
    """``html.unescape(text)`` word by word, each distinct word resolved once (``known``): no
    reference contains a space, and the words of names and labels repeat."""
    if "&" not in text:
        return text
    words = text.split(" ")
    for index, word in enumerate(words):
        if "&" in word:
            if word not in known:
                known[word] = html.unescape(word)
            words[index] = known[word]
    return " ".join(words)


class _CellValues:
    """The text of a cell from its attributes and content, as openpyxl (``data_only``) and
    ``_cell_text`` would give it; called once per distinct (attributes, content)."""

    def __init__(self, workbook):
        from openpyxl.utils.datetime import from_excel, from_ISO8601

        self.shared = workbook.shared_strings
        self.date_styles = workbook._date_formats
        self.timedelta_styles = workbook._timedelta_formats
        self.epoch = workbook.epoch
        self.from_excel, self.from_iso = from_excel, from_ISO8601
        self.references: dict[str, str] = {}
        self.known: dict[str, str] = {}

    def cached(self, key: str) -> str:
        if key not in self.known:
            self.known[key] = self(key)
        return self.known[key]

    def __call__(self, key: str) -> str:
        attributes, _, content = key.partition(">")
        kind = _TYPE.search(attributes)
        kind = kind.group(1) if kind else "n"
        if kind == "inlineStr":
            inner = content[7:-9]  # the usual single run: <is><t>...</t></is>
            if (content.startswith("<is><t>") and content.endswith("</t></is>")
                    and "<" not in inner):
                return _unescape(inner, self.references)
            if "<rPh" in content:
                content = _PHONETIC.sub("", content)
            return _unescape("".join(m.group(1) or "" for m in _TEXT.finditer(content)),
                             self.references)
        value = _VALUE.search(content)
        if value is None or value.group(1) == "":
            return ""
        text = value.group(1)
        if kind == "s":
            return _cell_text(self.shared[int(text)])
        if kind == "b":
            return str(bool(int(text)))
        if kind == "d":
            return _cell_text(self.from_iso(text))
        if kind != "n":
            return _unescape(text, self.references)
        number = float(text) if any(c in text for c in ".eE") else int(text)
        style = _STYLE.search(attributes)
        style = int(style.group(1)) if style else 0
        if style in self.date_styles:
            return _cell_text(self.from_excel(number, self.epoch,
                                              timedelta=style in self.timedelta_styles))
        return _cell_text(number)


def _xlsx_chunks(source) -> Iterator[bytes]:
    """The worksheet XML in pieces that end after a whole row (the file is never held whole)."""
    pending = b""
    while True:
        block = source.read(CHUNK_BYTES)
        if not block:
            break
        pending += block
        cut = pending.rfind(b"</row>")
        if cut < 0:
            continue
        yield pending[:cut + 6]
        pending = pending[cut + 6:]
    if pending.strip():
        yield pending


def _cell_key(rest: str) -> str:
    """A cell's attributes and content from the text after its reference (which may run on
    past the cell's end to the next cell)."""
    end = rest.find("</c>")
    return rest[:end] if end >= 0 else rest[:rest.find("/>")]


def _row_started(text: str) -> int:
    """The number of the last ``<row>`` that starts in ``text`` (0: none starts there)."""
    starts = _ROW_START.findall(text)
    if not starts:
        return 0
    number = _ROW_NUMBER.search(starts[-1])
    if number is None:
        raise _Unusual
    return int(number.group(1))


def _pieces(values: _CellValues, rests: list[bytes]) -> tuple[list[str], list[int]]:
    """What follows each cell's reference up to the next reference: the cell's text, and the
    number of the row that starts after the cell (0: none). Called with the distinct pieces of
    a chunk (most of them the unique cells of each row: names, codes, times)."""
    # A cell whose reference is not its first attribute (or has none) would be read as part
    # of the cell before it: such a sheet is left to openpyxl.
    joined = b"".join(rests)
    if b"<c " in joined or b"<c>" in joined:
        raise _Unusual
    texts = [rest.decode("utf-8") for rest in rests]
    keys = [text[:end] if (end := text.find("</c>")) >= 0 else _cell_key(text) for text in texts]
    known = values.known
    cells = [known[key] if key in known else values.cached(key) for key in keys]
    return cells, [_row_started(text) if "<row" in text else 0 for text in texts]


def _column_numbers(letters: list[bytes]) -> np.ndarray:
    """Spreadsheet column numbers of column letters (A = 1, Z = 26, AA = 27), vectorised."""
    codes = np.array(letters, dtype="S3").view(np.uint8).reshape(len(letters), 3).astype(np.int64)
    number = np.zeros(len(letters), dtype=np.int64)
    for position in range(3):
        present = codes[:, position] > 0
        number = np.where(present, number * 26 + codes[:, position] - 64, number)
    return number


def _chunk_cells(values: _CellValues, pieces: list[bytes]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The row and column numbers and texts of the cells of one chunk, from its pieces [text
    before the first cell, then per cell: its column letters, what follows its reference],
    and the numbers of the rows with a cell that is not blank."""
    before = pieces[0].decode("utf-8")
    if "<c " in before or "<c>" in before:
        raise _Unusual
    rest_codes, rests = number_distinct(pieces[2::2])
    cells, row_starts = _pieces(values, rests)
    texts = np.empty(len(cells), dtype=object)
    texts[:] = cells
    # A cell is in the row started last before it: in the text before the chunk's first cell,
    # or after one of the cells before it.
    started = np.concatenate(([_row_started(before)],
                              np.array(row_starts, dtype=np.int64)[rest_codes[:-1]]))
    if started[0] == 0:
        raise _Unusual
    rows = started[np.maximum.accumulate(np.where(started > 0, np.arange(len(started)), 0))]
    blank = np.array([not cell.strip() for cell in cells], dtype=bool)
    return rows, _column_numbers(pieces[1::2]), texts[rest_codes], rows[~blank[rest_codes]]


@contextlib.contextmanager
def _no_size_scan():
    """openpyxl's read-only mode parses a whole worksheet with ElementTree to find its size when
    the file states none (``<dimension>``, left out by some writers): not needed here."""
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    scan = ReadOnlyWorksheet._get_size
    ReadOnlyWorksheet._get_size = lambda self: None
    try:
        yield scan
    finally:
        ReadOnlyWorksheet._get_size = scan


def _fast_rows(workbook, worksheet) -> tuple[np.ndarray, np.ndarray]:
    """Every cell of a worksheet as text in a rows x columns array (row 1 = header), parsed
    with one regular expression per chunk of rows and one conversion per distinct cell: the
    cost grows linearly with the cells, without openpyxl's object per cell. With it, which
    rows have a cell that is not blank."""
    values = _CellValues(workbook)
    rows, columns, texts, filled = [], [], [], []
    with worksheet._get_source() as source:
        for chunk in _xlsx_chunks(source):
            pieces = _CELL_REFERENCE.split(chunk)
            if len(pieces) == 1:
                if b"<c " in chunk or b"<c>" in chunk:
                    raise _Unusual
                continue
            for found, part in zip((rows, columns, texts, filled), _chunk_cells(values, pieces)):
                found.append(part)
    if not rows:
        return np.empty((0, 0), dtype=object), np.zeros(0, dtype=bool)
    rows, columns, texts = np.concatenate(rows), np.concatenate(columns), np.concatenate(texts)
    grid = np.full((int(rows.max()), int(columns.max())), "", dtype=object)
    grid[rows - 1, columns - 1] = texts
    nonblank = np.zeros(len(grid), dtype=bool)
    nonblank[np.concatenate(filled) - 1] = True
    return grid, nonblank


def _slow_rows(worksheet) -> np.ndarray:
    rows = [[_cell_text(v) for v in row] for row in worksheet.iter_rows(values_only=True)]
    width = max((len(r) for r in rows), default=0)
    grid = np.full((len(rows), width), "", dtype=object)
    for index, row in enumerate(rows):
        grid[index, :len(row)] = row
    return grid


def _sheet_cells(path: Path, sheet: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """The cells of the sheet as text (rows x columns), which rows have a cell that is not
    blank, and the sheet's name."""
    from openpyxl import load_workbook

    try:
        with _no_size_scan() as size_scan:
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
        try:
            grid, filled = _fast_rows(workbook, workbook[sheet])
        except _Unusual:
            size_scan(workbook[sheet])
            grid = _slow_rows(workbook[sheet])
            filled = _filled_rows(grid)
    finally:
        workbook.close()
    return grid, filled, sheet


def _filled_rows(cells: np.ndarray) -> np.ndarray:
    """Which rows have a cell that is not blank, each distinct cell text stripped once."""
    codes, texts = pd.factorize(cells.ravel(), use_na_sentinel=False)
    blank = np.array([not str(text).strip() for text in texts], dtype=bool)
    return ~blank[codes].reshape(cells.shape).all(axis=1)


def read_xlsx(path: Path, sheet: str | None, content: str | None = None) -> RawTable:
    grid, filled, sheet = _sheet_cells(path, sheet)
    if not len(grid) or not any(str(cell).strip() for cell in grid[0]):
        raise _empty(path, content, f"sheet '{sheet}' ")
    header = list(grid[0])
    _check_header(path, header)
    numbers = np.flatnonzero(filled[1:]) + 2
    if not len(numbers):
        raise _no_rows(path, content, f"sheet '{sheet}' ")
    frame = pd.DataFrame(grid[numbers - 1], columns=[h.strip() for h in header], dtype=object)
    frame.index = pd.Index(numbers, name="row")
    return RawTable(path, frame, "xlsx", None, sheet)


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

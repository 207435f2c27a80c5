"""One report's view of the disclosure control table (results/audit/disclosure_control.csv):
the report contexts take every controlled number from here, with the mark of a hidden cell, so
that what a PDF prints is what the release manifest lists.

Marks: a cell below the threshold shows ``suppressed_mark`` ("<5*": fewer than min_cell people);
a cell hidden only so that other cells cannot be worked out shows ``complementary_mark``, with a
legend of its own (its count is not small, so "<5*" would state a false value).
"""

from __future__ import annotations

import io
import mmap
import os
from collections.abc import Callable, Collection

import pandas as pd

from dpo_eval.core.config import MIN_CELL_ADVISED
from dpo_eval.release.manifest import COMPLEMENTARY, PRIMARY, SHOWN, DisclosureError
from dpo_eval.core.study import MODEL_WAVES

KEYS = ("item", "domain", "wave", "institutions", "cohort", "role", "label")


def read_control(path, reports: Collection[str] | None = None) -> pd.DataFrame:
    """The control table with its texts as texts (institution ids like "001" stay as written);
    with ``reports``, only the rows of those reports.

    The table is sorted by report (``cells.control_release``), so the rows of a batch of school
    reports (consecutive school ids) lie in one stretch of the file, found by binary search
    (``_report_stretch``); only that stretch is parsed. At 10,000 schools the file has some
    700 MB, nearly all of it the lists of institutions behind the evaluation report's cells,
    and each of the 40 batch jobs parsed all of it for its 250 schools.
    """
    dtype = {c: str for c in (*KEYS, "report", "status", "level")}
    if reports is None:
        table = pd.read_csv(path, dtype=dtype, keep_default_na=False)
    else:
        wanted = sorted(set(reports)) or [""]
        table = pd.read_csv(io.BytesIO(_report_stretch(path, wanted[0], wanted[-1])), dtype=dtype,
                            keep_default_na=False)
        table = table[table["report"].isin(wanted)].reset_index(drop=True)
    # Always float: a stretch of only whole values would otherwise be read as integers.
    table["value"] = pd.to_numeric(table["value"], errors="coerce").astype(float)
    return table


def _report_stretch(path, first: str, last: str) -> bytes:
    """The header line and every line whose report lies between ``first`` and ``last``
    (inclusive) of a control table sorted by report, as CSV bytes, read without parsing the rest."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise pd.errors.EmptyDataError(f"{path}: the disclosure control table is empty")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            header_end = data.find(b"\n") + 1 or len(data)
            start = _first_line_from(data, first.encode("utf-8"), header_end)
            # The smallest text after ``last`` is ``last`` followed by the character of code 0.
            end = _first_line_from(data, last.encode("utf-8") + b"\x00", start)
            return data[:header_end] + data[start:end]


def _first_line_from(data, key: bytes, low: int) -> int:
    """The start of the first line at or after ``low`` whose first field is not below ``key``
    (the file's length if none): a binary search over byte offsets, each mapped to the next line
    start, which keeps the order of the (sorted) lines."""
    floor = low

    def line_at(offset: int) -> int:
        if offset == floor or data[offset - 1:offset] == b"\n":
            return offset
        return data.find(b"\n", offset) + 1 or len(data)

    def report(start: int) -> bytes:
        comma = data.find(b",", start)
        return data[start:comma if comma >= 0 else len(data)]

    high = len(data)
    while low < high:
        middle = (low + high) // 2
        line = line_at(middle)
        if line < len(data) and report(line) < key:
            low = middle + 1
        else:
            high = middle
    return line_at(low)


class ControlByReport:
    """The control table split by report once, for a batch of reports: each report's rows are
    then found in constant time instead of by a scan of the whole release, which made a batch
    of school reports quadratic in the number of schools."""

    def __init__(self, control: pd.DataFrame) -> None:
        self.groups = dict(tuple(control.groupby("report", sort=False)))
        self.empty = control.iloc[0:0]

    def rows(self, report: str) -> pd.DataFrame:
        """The report's rows in the order of the control table (none: an empty frame)."""
        return self.groups.get(report, self.empty)


class ReportCells:
    """The controlled cells of one report, looked up by item and any of KEYS. ``control``: the
    whole control table, or the same split by report (``ControlByReport``)."""

    def __init__(self, control: pd.DataFrame | ControlByReport, report: str, marks: dict[str, str]) -> None:
        own = control.rows(report) if isinstance(control, ControlByReport) else control[control["report"] == report]
        rows = own[own["printed"].astype(str).isin(["True", "true", "1"])]
        self.rows = rows.reset_index(drop=True)
        self.marks = marks
        self.level = str(own["level"].iloc[0]) if len(own) else ""
        self._records = self.rows.to_dict("records")
        self._indexes: dict[tuple[str, ...], dict[tuple, list[int]]] = {}

    def _index(self, columns: tuple[str, ...]) -> dict[tuple, list[int]]:
        """Positions of the rows by (item, *columns), built once per set of columns looked up."""
        if columns not in self._indexes:
            index: dict[tuple, list[int]] = {}
            for position, key in enumerate(zip(self.rows["item"], *(self.rows[c] for c in columns))):
                index.setdefault(key, []).append(position)
            self._indexes[columns] = index
        return self._indexes[columns]

    def find(self, item: str, **keys) -> dict | None:
        """The one printed cell of ``item`` with ``keys`` (a row as a dict), or None when the
        report has none."""
        found = self._index(tuple(keys)).get((item, *keys.values()), [])
        if len(found) > 1:
            raise ValueError(f"{len(found)} cells of {item} {keys} in one report")
        return self._records[found[0]] if found else None

    def value(self, item: str, **keys) -> float | None:
        """The value of a shown cell, None when it is hidden or absent."""
        cell = self.find(item, **keys)
        return float(cell["value"]) if cell is not None and cell["status"] == SHOWN else None

    def status(self, item: str, **keys) -> str | None:
        cell = self.find(item, **keys)
        return None if cell is None else str(cell["status"])

    def text(self, item: str, fmt: Callable[[float], str], absent: str = "—", **keys) -> str:
        """The cell as printed: its value formatted, its mark when hidden, ``absent`` when the
        report has no such cell (nobody answered)."""
        cell = self.find(item, **keys)
        if cell is None:
            return absent
        if cell["status"] == SHOWN:
            return fmt(float(cell["value"]))
        return self.marks[str(cell["status"])]

    def any_hidden(self, status: str, items: tuple[str, ...] | None = None) -> bool:
        rows = self.rows if items is None else self.rows[self.rows["item"].str.startswith(items)]
        return bool((rows["status"] == status).any())


def marks(strings: dict, min_cell: int) -> dict[str, str]:
    """The mark of each status of a hidden cell, in the report's language."""
    return {PRIMARY: strings["suppressed_mark"].format(min_cell=min_cell),
            COMPLEMENTARY: strings["complementary_mark"]}


def low_threshold_note(strings: dict, min_cell: int) -> str | None:
    """The legend's sentence for a threshold below the advised one (None at 5 or more)."""
    if min_cell >= MIN_CELL_ADVISED:
        return None
    return strings["low_threshold_note"].format(min_cell=min_cell, advised=MIN_CELL_ADVISED,
                                                last=MIN_CELL_ADVISED - 1)


# --------------------------------------------------------------------------- school reports


def participation(view: ReportCells, waves: tuple[str, ...]) -> list[dict]:
    """Per wave: the team's respondents (0 when none) and the region's mean per school."""
    rows = []
    for wave in waves:
        own = view.value("participation", wave=wave)
        region = view.value("participation_region", wave=wave)
        rows.append({"wave": wave, "n": int(own) if own is not None else 0,
                     "region_mean": region if region is not None else 0.0})
    return rows


def score_rows(view: ReportCells, domains: list[str], waves: tuple[str, ...],
               fmt: Callable[[float], str], count: Callable[[int], str]) -> list[dict]:
    """The score table: per domain and wave the shown level's mean (or its mark), its
    respondents, the region's mean and, at the team level, the team's difference from it."""
    rows = []
    for domain in domains:
        for wave in waves:
            cell = view.find("scores", domain=domain, wave=wave)
            region = view.find("scores_region", domain=domain, wave=wave)
            if cell is None and region is None:
                continue
            shown = cell is not None and cell["status"] == SHOWN
            rows.append({"domain": domain, "wave": wave,
                         "mine": view.text("scores", fmt, domain=domain, wave=wave),
                         "n": count(int(cell["n"])) if shown else "",
                         "region": view.text("scores_region", fmt, domain=domain, wave=wave),
                         "difference": view.text("scores_difference", fmt, absent="", domain=domain, wave=wave),
                         "shown": shown})
    return rows


def profile_means(view: ReportCells, item: str, waves: tuple[str, ...] = MODEL_WAVES) -> pd.DataFrame:
    """domain, wave, mean of the shown cells of ``item`` at ``waves`` (the profile figure)."""
    rows = view.rows[(view.rows["item"] == item) & view.rows["wave"].isin(waves) & (view.rows["status"] == SHOWN)]
    return pd.DataFrame({"domain": rows["domain"], "wave": rows["wave"], "mean": rows["value"].astype(float)})


def need_rows(view: ReportCells, areas: dict[str, str], fmt: Callable[[float], str]) -> list[dict]:
    """The needs table: per area the school's own mean, the similar schools' and all schools'
    (or their marks), with the similar schools' mean for ranking (0 when hidden)."""
    rows = []
    for area, label in areas.items():
        domain = f"need:{area}"
        if view.find("needs_similar", domain=domain) is None and view.find("needs_region", domain=domain) is None:
            continue
        similar = view.value("needs_similar", domain=domain)
        rows.append({"area": label, "own": view.text("needs_own", fmt, domain=domain),
                     "similar": view.text("needs_similar", fmt, domain=domain),
                     "region": view.text("needs_region", fmt, domain=domain),
                     "sort": -similar if similar is not None else 0})
    return rows


# --------------------------------------------------------------------------- evaluation report


def _status_by(view: ReportCells, item: str, keys: pd.DataFrame) -> pd.Series:
    """The status of ``item``'s cell for each row of ``keys`` (columns named as in KEYS);
    "shown" where the report has no such cell (nothing controlled there)."""
    rows = view.rows[view.rows["item"] == item]
    columns = list(keys.columns)
    found = keys.merge(rows[[*columns, "status"]].drop_duplicates(columns), on=columns, how="left")
    return pd.Series(found["status"].fillna(SHOWN).to_numpy(), index=keys.index)


def sample_status(view: ReportCells, sample: pd.DataFrame) -> pd.Series:
    """Status of each row of the sample table (tables/sample.csv): its role and settlement
    cells as controlled, the totals and years in management shown unless controlled hidden."""
    status = pd.Series(SHOWN, index=sample.index, dtype=object)
    level = sample["level"].fillna("").astype(str)
    roles = sample["characteristic"] == "role"
    status[roles] = _status_by(view, "sample:role:count",
                               pd.DataFrame({"cohort": sample.loc[roles, "cohort"], "role": level[roles]}))
    places = sample["characteristic"] == "settlement"
    status[places] = _status_by(view, "sample:settlement:count",
                                pd.DataFrame({"cohort": sample.loc[places, "cohort"], "label": level[places]}))
    for characteristic in ("participants", "institutions", "municipalities"):
        rows = sample["characteristic"] == characteristic
        status[rows] = _status_by(view, f"sample:{characteristic}", pd.DataFrame({"cohort": sample.loc[rows, "cohort"]}))
    return status


def municipality_status(view: ReportCells, municipalities: pd.DataFrame) -> pd.Series:
    """Status of each (municipality, cohort) cell of the municipality table."""
    return _status_by(view, "municipalities", pd.DataFrame({"cohort": municipalities["cohort"],
                                                            "label": municipalities["municipality"]}))


def descriptive_status(view: ReportCells, descriptives: pd.DataFrame) -> pd.Series:
    """Status of each (domain, cohort, wave) cell of the descriptives (table and figure)."""
    return _status_by(view, "descriptives:mean", descriptives[["domain", "cohort", "wave"]].astype(str))


# Items of the evaluation report whose cells it can mark as hidden; every other cell it prints
# (cohort-wide counts, reliability, needs by stakeholder group, model results) must be shown.
EVALUATION_HIDEABLE = ("sample:role", "sample:settlement", "municipalities", "descriptives", "needs:",
                       "needs_formats:", "figure_likert:")


def _without_cohort_flow(rows: pd.DataFrame) -> pd.Series:
    """The flow cells of the people no wave assigns a cohort to (cleaning.without_cohort:
    exclude): a handful in a national study, printed as the mark of a hidden cell when fewer
    than the threshold, as the report's other hideable cells are."""
    return rows["item"].str.startswith("flow:") & (rows["cohort"].astype(str) == "unknown")


def flow_status(view: ReportCells, flow: pd.DataFrame, counts: list[str]) -> pd.DataFrame:
    """Status of each count of each row of the flow per wave (tables/flow.csv), by column."""
    keys = flow[["wave", "cohort"]].astype(str)
    return pd.DataFrame({column: _status_by(view, f"flow:{column}", keys) for column in counts}, index=flow.index)


def check_evaluation_shown(view: ReportCells) -> None:
    """Stop with a clear message where the control hid a cell the evaluation report prints
    unconditionally (flow counts, reliability, model results): a cohort's or a domain's whole
    sample below the threshold, or one revealing another, for which no evaluation report can be
    published."""
    rows = view.rows[~view.rows["item"].str.startswith(EVALUATION_HIDEABLE) & ~_without_cohort_flow(view.rows)]
    hidden = rows[rows["status"] != SHOWN]
    if len(hidden):
        first = hidden.iloc[0]
        raise DisclosureError(
            f"{len(hidden)} cell(s) of the evaluation report would disclose fewer than reports.min_cell people, "
            f"e.g. {first['item']} (domain {first['domain']}, wave {first['wave']}, cohort {first['cohort']}, "
            f"role {first['role']}, n = {first['n']}). What to do: the study is too small for an evaluation "
            "report at this threshold; see results/audit/disclosure_control.csv")

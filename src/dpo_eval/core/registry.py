"""The institutions registry and the recipients file: the one reader of each, used by every step
that reads them (ingest, the outbox, the checks when the DAG is built).

Both are read by the survey readers (``dpo_eval.core.readers``): CSV in UTF-8 or Windows-1251 with
``,`` ``;`` or tab, as Excel saves it, or XLSX; rows numbered as a spreadsheet shows them.
Every problem of a file is listed at once, naming file, row, column and what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dpo_eval.core.errors import InputError, raise_all, shown
from dpo_eval.core.readers import read_export
from dpo_eval.core.study import STAKEHOLDER_GROUPS
from dpo_eval.core.text import fold

REGISTRY_COLUMNS = ("id", "name", "municipality", "type", "settlement", "language", "email")
# English names for reports in English; where absent, the Russian names are used.
REGISTRY_OPTIONAL = ("name_en", "municipality_en")
# The columns every institution needs a value in (the e-mail address may be left empty: who gets
# the reports is the recipients file's to say).
REGISTRY_REQUIRED_VALUES = ("id", "name", "municipality", "type", "settlement", "language")
LANGUAGES = ("ru", "en")
# The values the reports know: the types are the stakeholder groups of the needs assessment.
REGISTRY_VALUES = {"type": STAKEHOLDER_GROUPS, "settlement": ("urban", "rural"), "language": LANGUAGES}

RECIPIENT_COLUMNS = ("institution", "name", "emails", "language", "report")
REPORT_KINDS = ("institution", "evaluation")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: invisible in a
# spreadsheet, they break a line in an e-mail header or a PDF title.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Recipient:
    institution: str
    name: str
    addresses: tuple[str, ...]
    language: str
    report: str


def _required_columns(path: Path, frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(path, 1, None, f"required column(s) {', '.join(missing)} missing "
                         f"(present: {', '.join(frame.columns)})", f"add the column to the {what}")


def control_characters(path: Path, frame: pd.DataFrame, columns) -> list[InputError]:
    """A problem per cell of ``columns`` holding a control character (a line break, a tab)."""
    problems = []
    for column in columns:
        cells = frame[column]
        for row, value in cells[cells.str.contains(CONTROL)].items():
            char = CONTROL.search(value).group()
            problems.append(InputError(path, int(row), column, f"{shown(value)} holds the invisible "
                                       f"control character U+{ord(char):04X} (e.g. a line break "
                                       "typed with Alt+Enter)", "delete it, keeping the text on one line"))
    return problems


def _empty_cells(path: Path, frame: pd.DataFrame, columns) -> list[InputError]:
    return [InputError(path, int(row), column, "is empty", "fill it in")
            for column in columns for row in frame.index[frame[column].str.strip() == ""]]


def _unknown_values(path: Path, frame: pd.DataFrame, allowed: dict[str, tuple[str, ...]]) -> list[InputError]:
    problems = []
    for column, values in allowed.items():
        cells = frame[column]
        wrong = cells[(cells.str.strip() != "") & ~cells.isin(values)]
        problems += [InputError(path, int(row), column, f"{shown(value)} is not one of {', '.join(values)}",
                                "write one of these values") for row, value in wrong.items()]
    return problems


def _repeated(path: Path, cells: pd.Series, column: str, what: str, fix: str,
              key=lambda value: value) -> list[InputError]:
    """A problem for every row whose ``key`` of its cell an earlier row already has, naming all
    the rows that share it."""
    keys = cells.map(key)
    repeated = keys[keys.duplicated(keep=False) & (keys != "")]
    problems = []
    for _, rows in repeated.groupby(repeated, sort=False):
        listed = ", ".join(map(str, rows.index))
        problems += [InputError(path, int(row), column, f"{what} {shown(cells.loc[row])} occurs in rows {listed}",
                                fix) for row in rows.index[1:]]
    return problems


def load_registry(path: str | Path) -> pd.DataFrame:
    """The institutions registry: the columns ``REGISTRY_COLUMNS`` (with ``name_en`` and
    ``municipality_en`` filled from the Russian names where absent), every institution with its
    own id and its own name (compared after folding case, spaces and "ё", as the survey exports'
    institution cells are), every required cell filled, known types, settlements and languages,
    and no control characters."""
    path = Path(path)
    frame = read_export(path, content="the institutions, one per row").frame
    _required_columns(path, frame, REGISTRY_COLUMNS, "institutions registry")
    registry = frame[list(REGISTRY_COLUMNS)].copy()
    for column in REGISTRY_OPTIONAL:
        source = column.removesuffix("_en")
        registry[column] = (frame[column].where(frame[column].str.strip() != "", frame[source])
                            if column in frame.columns else frame[source])
    raise_all([
        *control_characters(path, registry, registry.columns),
        *_empty_cells(path, registry, REGISTRY_REQUIRED_VALUES),
        *_unknown_values(path, registry, REGISTRY_VALUES),
        *_repeated(path, registry["id"], "id", "institution id", "give every institution its own id"),
        *_repeated(path, registry["name"], "name", "institution name (ignoring case and spaces)",
                   "give every institution its own name (the survey exports name it, so two rows with one "
                   "name cannot be told apart), or delete the row copied under a new id", key=fold),
    ])
    return registry.reset_index(drop=True)


def _recipient_problems(path: Path, row: int, cells: dict, registry_ids: set[str] | None) -> list[InputError]:
    problems = []
    addresses = [a.strip() for a in cells["emails"].split(";") if a.strip()]
    where = lambda column, problem, fix: InputError(path, row, column, problem, fix)  # noqa: E731
    if not addresses:
        problems.append(where("emails", "no address", "write the e-mail address(es), separated by ';'"))
    problems += [where("emails", f"{shown(a)} is not a valid e-mail address", "correct the address")
                 for a in addresses if not EMAIL.match(a)]
    if len(set(addresses)) != len(addresses):
        problems.append(where("emails", "an address occurs twice", "write each address once"))
    if cells["language"] not in LANGUAGES:
        problems.append(where("language", f"{shown(cells['language'])} is not ru or en", "write ru or en"))
    if cells["report"] not in REPORT_KINDS:
        problems.append(where("report", f"{shown(cells['report'])} is not one of {', '.join(REPORT_KINDS)}",
                              "write institution (its own report) or evaluation (the evaluation report)"))
    if registry_ids is not None and cells["institution"] not in registry_ids:
        problems.append(where("institution", f"{shown(cells['institution'])} is not in the institutions registry",
                              "use the institution's id from the registry"))
    return problems


def load_recipients(path: str | Path, registry_ids: set[str] | None = None) -> list[Recipient]:
    """The recipients file: institution id (one row per institution, in ``registry_ids`` when
    given), the recipient's name (no control characters: it goes into an e-mail header), e-mail
    addresses separated by ';', language (ru/en) and report (institution or evaluation)."""
    path = Path(path)
    frame = read_export(path, content="the recipients, one institution per row").frame
    _required_columns(path, frame, RECIPIENT_COLUMNS, "recipients file")
    problems = control_characters(path, frame, RECIPIENT_COLUMNS)
    problems += _repeated(path, frame["institution"], "institution", "institution",
                          "give each institution one row (several addresses go in one cell, separated by ';')")
    recipients = []
    for row, cells in zip(frame.index, frame[list(RECIPIENT_COLUMNS)].to_dict("records")):
        problems += _recipient_problems(path, int(row), cells, registry_ids)
        addresses = tuple(a.strip() for a in cells["emails"].split(";") if a.strip())
        recipients.append(Recipient(cells["institution"], cells["name"], addresses, cells["language"],
                                    cells["report"]))
    raise_all(problems)
    return recipients


def check_recipient_coverage(registry: pd.DataFrame, recipients: list[Recipient], no_recipient,
                              recipients_path: str | Path) -> None:
    """Every school of the registry (each gets a report) has a recipient, or is listed in the
    configuration's ``delivery.no_recipient``; every id listed there is a school of the registry.
    Raises InputError(s) naming the schools otherwise."""
    schools = registry.loc[registry["type"] == "school", "id"]
    covered = {r.institution for r in recipients} | set(no_recipient)
    problems = [InputError(recipients_path, None, "institution", f"school {shown(school)} has a report but no "
                           "recipient", "add a row for it, or list its id under delivery.no_recipient in "
                           "config/config.yaml to send it nothing") for school in schools if school not in covered]
    problems += [InputError("config/config.yaml", None, None, f"delivery.no_recipient lists {shown(school)}, "
                            "which is not a school of the institutions registry", "correct or remove the id")
                 for school in no_recipient if school not in set(schools)]
    raise_all(problems)

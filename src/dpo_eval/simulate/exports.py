"""The export formats: each file as the survey tool or spreadsheet that researchers use writes it.

Owns the file names and the question wording of the forms, and the byte-level formats:

* ``pre_entry_google.csv``: Google Forms UTF-8 CSV ("Отметка времени", grid questions as
  ``Вопрос [строка]`` headers, Likert labels, e-mail, name and phone columns);
* ``post_exit_yandex.xlsx``: Yandex Forms-style XLSX with "now" and retrospective "then" items
  (sheet "Ответы" plus a summary sheet; start and finish times), with fixed metadata and zip
  time stamps so that the same seed gives the same bytes;
* ``followup_excel_ru.csv``: Excel in a Russian locale (cp1251, ``;``-separated, CRLF, labels
  recoded to numbers by hand, with the out-of-range cells of ``dpo_eval.simulate.defects``);
* ``needs_assessment_google.csv``: Google Forms CSV saved with a BOM (UTF-8-sig), checkbox
  answers joined by ", ";
* ``institutions.csv``: the registry of institutions (the partners, then the schools).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np

from dpo_eval.core.codebook import Codebook, Item
from dpo_eval.simulate.defects import likert_label, out_of_range_cells
from dpo_eval.simulate.design import COMPETENCY_DOMAINS, PARTNERS

FILES = {
    "pre": "pre_entry_google.csv",
    "post": "post_exit_yandex.xlsx",
    "followup": "followup_excel_ru.csv",
    "needs": "needs_assessment_google.csv",
    "institutions": "institutions.csv",
}
FIXED_ZIP_TIME = (2025, 1, 1, 0, 0, 0)

PRE_PROMPT = "Оцените, насколько вы согласны с утверждениями о себе"
COMM_PROMPT = "Оцените взаимодействие вашей команды с вузом и ИРО"
POST_NOW_PROMPT = "Оцените утверждения о себе сейчас"
POST_THEN_PROMPT = "Как бы вы оценили себя до начала обучения?"
NEEDS_PROMPT = "Оцените важность направлений для программы повышения квалификации"
FORMATS_QUESTION = "Какие форматы обучения вы предпочитаете? (можно выбрать несколько)"
REGISTRY_COLUMNS = ["id", "name", "name_en", "municipality", "municipality_en", "type", "settlement",
                    "language", "email"]


def write_csv(path: Path, header: list[str], rows: list[list], *, encoding: str,
              delimiter: str, lineterminator: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=lineterminator)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


def write_xlsx(path: Path, sheets: dict[str, tuple[list[str], list[list]]]) -> None:
    """XLSX with fixed metadata and zip timestamps, so that the same seed gives the same bytes."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, (header, rows) in sheets.items():
        sheet = workbook.create_sheet(title)
        sheet.append(header)
        for row in rows:
            sheet.append(row)
    fixed = datetime(2025, 1, 1)
    workbook.properties.created = fixed
    workbook.properties.modified = fixed
    workbook.properties.creator = "Yandex Forms export (simulated)"
    raw = io.BytesIO()
    workbook.save(raw)
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                # openpyxl stamps the save time into "modified"; a fixed date keeps bytes stable.
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2025-01-01T00:00:00Z", data)
            fixed_info = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed_info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed_info, data)


class Exports:
    """Writes the files of one study into ``out``; the Likert labels' spelling variants draw
    from ``rng``, cell by cell in the order of the rows."""

    def __init__(self, codebook: Codebook, rng: np.random.Generator, out: Path):
        self.codebook, self.rng, self.out = codebook, rng, out

    def competency_items(self) -> list[Item]:
        return [i for d in COMPETENCY_DOMAINS for i in self.codebook.items_of(d)]

    def item_cells(self, sub: dict, items: list[Item], scale_of, prefix: str = "") -> list:
        """The cells of ``items`` in a submission: ``scale_of(value, item)``, blank when skipped."""
        cells = []
        for item in items:
            value = sub["answers"][prefix + item.id]
            cells.append("" if value is None else scale_of(value, item))
        return cells

    def likert(self, sub: dict):
        """Value -> label as this respondent's form shows it."""
        return lambda value, item: likert_label(value, self.codebook.scales[item.scale],
                                                sub["person"]["female"], self.rng)

    def registry(self, schools: list[dict]) -> None:
        rows = [[entry[col] for col in REGISTRY_COLUMNS] for entry in [*PARTNERS, *schools]]
        write_csv(self.out / FILES["institutions"], REGISTRY_COLUMNS, rows, encoding="utf-8",
                  delimiter=",", lineterminator="\n")

    def pre(self, subs: list[dict], names: dict) -> None:
        """Entry diagnostics: Google Forms CSV."""
        comm = self.codebook.items_of("communication")
        header = ["Отметка времени", "Адрес электронной почты", "Фамилия, имя, отчество",
                  "Контактный телефон", "Код участника (выдаётся организатором курса)",
                  "Образовательная организация", "Должность",
                  "Стаж работы в управленческой должности, лет", "Программа обучения"]
        header += [f"{PRE_PROMPT} [{i.ru}]" for i in self.competency_items()]
        header += [f"{COMM_PROMPT} [{i.ru}]" for i in comm]
        rows = []
        for sub in subs:
            p = sub["person"]
            rows.append([
                sub["finished"].strftime("%d.%m.%Y %H:%M:%S"), p["email"], p["full_name"],
                p["phone"], sub["typed"], names[p["institution"]],
                self.codebook.label("role", p["role"], "ru"), str(p["years_in_management"]),
                self.codebook.label("cohort", p["cohort"], "ru"),
                *self.item_cells(sub, self.competency_items(), self.likert(sub)),
                *self.item_cells(sub, comm, self.likert(sub)),
            ])
        write_csv(self.out / FILES["pre"], header, rows, encoding="utf-8", delimiter=",",
                  lineterminator="\n")

    def post(self, subs: list[dict], names: dict) -> None:
        """Exit diagnostics with the retrospective items: Yandex Forms XLSX."""
        comm = self.codebook.items_of("communication")
        competency = self.competency_items()
        header = ["ID", "Время начала заполнения", "Время создания", "Фамилия, имя, отчество",
                  "Код участника", "Образовательная организация", "Программа обучения"]
        header += [f"{POST_NOW_PROMPT} / {i.ru}" for i in competency]
        header += [f"{POST_THEN_PROMPT} / {i.ru}" for i in competency]
        header += [f"{COMM_PROMPT} / {i.ru}" for i in comm]
        rows = []
        first_id = 481_516_000 + int(self.rng.integers(0, 1000))
        for index, sub in enumerate(subs):
            p = sub["person"]
            rows.append([
                first_id + index, sub["started"].strftime("%Y-%m-%d %H:%M:%S"),
                sub["finished"].strftime("%Y-%m-%d %H:%M:%S"), p["full_name"], sub["typed"],
                names[p["institution"]], self.codebook.label("cohort", p["cohort"], "ru"),
                *self.item_cells(sub, competency, self.likert(sub)),
                *self.item_cells(sub, competency, self.likert(sub), prefix="then:"),
                *self.item_cells(sub, comm, self.likert(sub)),
            ])
        summary = (["Показатель", "Значение"], [["Всего ответов", len(rows)],
                                                ["Форма", "Выходная диагностика"]])
        write_xlsx(self.out / FILES["post"], {"Ответы": (header, rows), "Сводка": summary})

    def followup(self, subs: list[dict], names: dict, out_of_range: int) -> list[dict]:
        """The delayed follow-up: Excel CSV in a Russian locale, answers recoded to numbers, with
        ``out_of_range`` impossible values; returns where they are."""
        items = self.competency_items()
        header = ["Дата и время", "Код участника", "Образовательная организация",
                  "Адрес электронной почты", *[i.ru for i in items]]
        rows = []
        for sub in subs:
            p = sub["person"]
            rows.append([sub["finished"].strftime("%d.%m.%Y %H:%M"), sub["typed"],
                         names[p["institution"]], p["email"],
                         *self.item_cells(sub, items, lambda value, item: str(value))])
        injected = out_of_range_cells(rows, header, 4, len(items), out_of_range, FILES["followup"],
                                      self.rng)
        write_csv(self.out / FILES["followup"], header, rows, encoding="cp1251",
                  delimiter=";", lineterminator="\r\n")
        return injected

    def needs(self, rows: list[list]) -> None:
        """Instrument B: Google Forms CSV saved with a BOM."""
        header = ["Отметка времени", "Адрес электронной почты", "Кого вы представляете?",
                  "Ваша организация", "Ваша должность", "Муниципальное образование"]
        header += [f"{NEEDS_PROMPT} [{a['ru']}]" for a in self.codebook.need_areas]
        header += [FORMATS_QUESTION]
        write_csv(self.out / FILES["needs"], header, rows, encoding="utf-8-sig", delimiter=",",
                  lineterminator="\n")

"""Seeded generator of a realistic DPO evaluation study, with its ground truth.

The generator writes what researchers really export from their survey tools, defects included,
and a machine-readable ground truth that the tests compare the pipeline against:

* ``pre_entry_google.csv``: entry diagnostics as a Google Forms UTF-8 CSV ("Отметка времени",
  grid questions as ``Вопрос [строка]`` headers, Russian Likert labels with feminine forms, case,
  spacing and "ё" variants, e-mail, name and phone columns);
* ``post_exit_yandex.xlsx``: exit diagnostics with retrospective "then" items as a Yandex
  Forms-style XLSX (sheet "Ответы", plus a summary sheet; start and finish times);
* ``followup_excel_ru.csv``: the delayed follow-up as Excel in a Russian locale writes a CSV
  (cp1251, ``;``-separated, CRLF, labels recoded to numbers by hand, a few out-of-range values);
* ``needs_assessment_google.csv``: the needs assessment of university, IRO and school
  respondents (UTF-8 with BOM, checkbox answers joined by ", ");
* ``institutions.csv``: the registry of institutions (schools, the university and the IRO).

The data-generating model, per participant *i* in school *s* of municipality *m*, domain *d*
and wave *w*: ``theta = mu_d + u_m + u_s + u_id + time_d*[w=post] + did_d*[w=post]*[program]
+ e_iw``; item responses are ``round(theta + b_k + e_ik)`` clipped to 1..5 and mirrored for
reverse-keyed items. The retrospective "then" rating is the pre-wave latent value lowered by a
cohort-specific response shift. Because rounding and clipping bend the scale, the true effects
on the scale-score metric (the estimand of the pipeline) are computed by Monte Carlo with
common random numbers and stored next to the latent ones.

Usage: ``python -m dpo_eval.simulate --seed 20251127 --out data/raw`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from dpo_eval.codebook import Codebook, Item, load_codebook

DEMO_SEED = 20251127
COMPETENCY_DOMAINS = ("universal", "professional", "subject_methodical")

# Municipalities of Khabarovsk Krai: name, code letters used in participant codes, urban,
# weight, English name.
MUNICIPALITIES = (
    ("г. Хабаровск", "ХБ", True, 6.0, "Khabarovsk"),
    ("г. Комсомольск-на-Амуре", "КМ", True, 5.0, "Komsomolsk-on-Amur"),
    ("Амурский район", "АМ", False, 1.5, "Amursky District"),
    ("Ванинский район", "ВН", False, 1.2, "Vaninsky District"),
    ("Советско-Гаванский район", "СГ", False, 1.2, "Sovetsko-Gavansky District"),
    ("Николаевский район", "НК", False, 1.0, "Nikolaevsky District"),
    ("Хабаровский район", "ХР", False, 1.5, "Khabarovsky District"),
    ("Комсомольский район", "КС", False, 1.2, "Komsomolsky District"),
    ("Бикинский район", "БК", False, 0.8, "Bikinsky District"),
    ("Вяземский район", "ВЗ", False, 0.8, "Vyazemsky District"),
    ("Верхнебуреинский район", "ВБ", False, 0.8, "Verkhnebureinsky District"),
    ("Солнечный район", "СЛ", False, 0.8, "Solnechny District"),
    ("Ульчский район", "УЛ", False, 0.6, "Ulchsky District"),
    ("Район имени Лазо", "ЛЗ", False, 1.0, "Imeni Lazo District"),
    ("Нанайский район", "НН", False, 0.6, "Nanaisky District"),
    ("Охотский район", "ОХ", False, 0.4, "Okhotsky District"),
)

# Latin letters that look like Cyrillic ones: what a participant on an English keyboard types.
LOOKALIKES = {"А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
              "С": "C", "Т": "T", "Х": "X", "У": "Y"}

SURNAMES = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
            "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев",
            "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев",
            "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев",
            "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров")
FIRST_NAMES_F = ("Анна", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана", "Марина",
                 "Юлия", "Надежда", "Людмила", "Галина", "Оксана", "Евгения", "Виктория")
FIRST_NAMES_M = ("Александр", "Сергей", "Андрей", "Алексей", "Дмитрий", "Игорь", "Михаил",
                 "Николай", "Владимир", "Евгений", "Олег", "Павел")
PATRONYMICS = ("Александров", "Сергеев", "Андреев", "Викторов", "Николаев", "Владимиров",
               "Петров", "Иванов", "Юрьев", "Михайлов")
TRANSLIT = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "sch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya"})
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "school.test")

ROLES = ("director", "deputy", "methodologist", "teacher_leader")
ROLE_SHARES = (0.22, 0.48, 0.18, 0.12)

PRE_PROMPT = "Оцените, насколько вы согласны с утверждениями о себе"
COMM_PROMPT = "Оцените взаимодействие вашей команды с вузом и ИРО"
POST_NOW_PROMPT = "Оцените утверждения о себе сейчас"
POST_THEN_PROMPT = "Как бы вы оценили себя до начала обучения?"
NEEDS_PROMPT = "Оцените важность направлений для программы повышения квалификации"
FORMATS_QUESTION = "Какие форматы обучения вы предпочитаете? (можно выбрать несколько)"

FILES = {
    "pre": "pre_entry_google.csv",
    "post": "post_exit_yandex.xlsx",
    "followup": "followup_excel_ru.csv",
    "needs": "needs_assessment_google.csv",
    "institutions": "institutions.csv",
}
WAVE_DATES = {"pre": datetime(2025, 9, 15, 9, 0), "post": datetime(2025, 12, 15, 9, 0),
              "followup": datetime(2026, 3, 16, 9, 0), "needs": datetime(2025, 5, 12, 9, 0)}
FIXED_ZIP_TIME = (2025, 1, 1, 0, 0, 0)


@dataclass
class Contamination:
    """Rates of the defects injected into the raw exports (per submission unless noted)."""

    duplicates: float = 0.04
    attrition_post: float = 0.10
    missing_pre: float = 0.03
    followup_share: float = 0.45
    code_case: float = 0.10
    code_spacing: float = 0.08
    code_lookalike: float = 0.08
    code_typo: float = 0.03
    straightlining: float = 0.03
    speeding: float = 0.04
    skipped_item: float = 0.015
    out_of_range_cells: int = 4

    def scaled(self, factor: float) -> "Contamination":
        """Defect rates multiplied by ``factor``; retention shares are not defects and stay."""
        kept = {"followup_share"}
        values = {}
        for name, value in asdict(self).items():
            if name in kept:
                values[name] = value
            elif isinstance(value, int):
                values[name] = int(round(value * factor))
            else:
                values[name] = min(value * factor, 0.9)
        return Contamination(**values)


@dataclass
class SimulationSpec:
    """Design and true parameters of a simulated study (latent 1-5 metric)."""

    seed: int = DEMO_SEED
    n_schools: int = 60
    n_municipalities: int = 14
    team_size_mean: float = 4.0
    n_needs: int = 300
    english_schools: int = 2
    did: dict = field(default_factory=lambda: {
        "universal": 0.30, "professional": 0.45, "subject_methodical": 0.25,
        "communication": 0.35})
    time_effect: float = 0.10
    baseline: float = 3.2
    sd_municipality: float = 0.10
    sd_institution: float = 0.25
    sd_participant: float = 0.45
    sd_occasion: float = 0.30
    sd_item: float = 0.70
    response_shift: dict = field(default_factory=lambda: {"program": 0.30, "comparison": 0.10})
    followup_retention_of_gain: float = 0.8
    small_institution_size: int | None = None
    contamination: Contamination = field(default_factory=Contamination)


# --------------------------------------------------------------------------- latent model


def _item_offsets(items: list[Item]) -> np.ndarray:
    """Fixed item difficulties, spread symmetrically so that items differ but the scale is centred."""
    k = len(items)
    return np.linspace(-0.35, 0.35, k) if k > 1 else np.zeros(1)


def responses_from_latent(theta: np.ndarray, items: list[Item], sd_item: float,
                          rng: np.random.Generator, points: int = 5) -> np.ndarray:
    """Raw 1..``points`` answers (reverse-keyed items mirrored) for latent values ``theta`` (n,)
    on the 1-5 metric, stretched linearly onto a scale with other than 5 points."""
    offsets = _item_offsets(items)
    x = theta[:, None] + offsets[None, :] + rng.normal(0.0, sd_item, (theta.size, len(items)))
    if points != 5:
        x = 1 + (x - 1) * (points - 1) / 4
    answers = np.clip(np.rint(x), 1, points).astype(int)
    reverse = np.array([item.reverse for item in items])
    answers[:, reverse] = points + 1 - answers[:, reverse]
    return answers


def keyed_scale_score(answers: np.ndarray, items: list[Item]) -> np.ndarray:
    reverse = np.array([item.reverse for item in items])
    keyed = answers.astype(float).copy()
    keyed[:, reverse] = 6 - keyed[:, reverse]
    return keyed.mean(axis=1)


def true_score_effects(spec: SimulationSpec, codebook: Codebook, n: int = 200_000) -> dict:
    """True effects on the scale-score metric, by Monte Carlo with common random numbers.

    Returns, per domain, the difference-in-differences of expected scale scores (program minus
    comparison, post minus pre), and the response shift (then minus pre) per cohort.
    """
    rng = np.random.default_rng([spec.seed, 7])
    total_sd = np.sqrt(spec.sd_municipality**2 + spec.sd_institution**2
                       + spec.sd_participant**2 + spec.sd_occasion**2)
    did, shift = {}, {}
    for domain, effect in spec.did.items():
        items = codebook.items_of(domain)
        base = spec.baseline + rng.normal(0.0, total_sd, n)
        noise_seed = int(rng.integers(2**31))

        # The retrospective rating carries extra latent noise (see _StudyWriter.latent).
        then_noise = rng.normal(0.0, spec.sd_occasion / 2, n)

        def mean_score(shift_value: float, extra: np.ndarray | float = 0.0) -> float:
            # The same item noise for every condition: differences are then nearly noise-free.
            answers = responses_from_latent(base + shift_value + extra, items, spec.sd_item,
                                            np.random.default_rng(noise_seed))
            return float(keyed_scale_score(answers, items).mean())

        pre = mean_score(0.0)
        did[domain] = round((mean_score(spec.time_effect + effect) - pre)
                            - (mean_score(spec.time_effect) - pre), 4)
        if domain in COMPETENCY_DOMAINS:
            shift[domain] = {cohort: round(mean_score(-value, then_noise) - pre, 4)
                             for cohort, value in spec.response_shift.items()}
    return {"did": did, "response_shift": shift}


# --------------------------------------------------------------------------- the population


def _female_form(word: str) -> str:
    return word + "а"


def _person(rng: np.random.Generator, used_emails: set[str]) -> dict:
    female = rng.random() < 0.78
    surname = str(rng.choice(SURNAMES))
    if female:
        first = str(rng.choice(FIRST_NAMES_F))
        patronymic = str(rng.choice(PATRONYMICS)) + "на"
        surname = _female_form(surname)
    else:
        first = str(rng.choice(FIRST_NAMES_M))
        patronymic = str(rng.choice(PATRONYMICS)) + "ич"
    login = f"{surname.lower().translate(TRANSLIT)}.{first[0].lower().translate(TRANSLIT)}"
    email = f"{login}@{rng.choice(EMAIL_DOMAINS)}"
    suffix = 1
    while email in used_emails:
        suffix += 1
        email = f"{login}{suffix}@{email.split('@')[1]}"
    used_emails.add(email)
    digits = rng.integers(0, 10, 9)
    phone = ("+7 (9{}{}) {}{}{}-{}{}-{}{}".format(*digits))
    return {"female": female, "full_name": f"{surname} {first} {patronymic}", "email": email,
            "phone": phone}


def _institutions(spec: SimulationSpec, rng: np.random.Generator) -> list[dict]:
    munis = MUNICIPALITIES[: spec.n_municipalities]
    weights = np.array([m[3] for m in munis])
    # Every municipality gets at least one school; the rest follow the population weights.
    extra = rng.choice(len(munis), spec.n_schools - len(munis), p=weights / weights.sum())
    assignment = np.sort(np.concatenate([np.arange(len(munis)), extra]))
    english = set(rng.choice(spec.n_schools, spec.english_schools, replace=False).tolist())
    schools, numbers = [], {}
    for index, muni_index in enumerate(assignment):
        name, letters, urban, _, name_en = munis[muni_index]
        numbers[muni_index] = numbers.get(muni_index, 0) + int(rng.integers(1, 9))
        kind = "МАОУ" if rng.random() < 0.3 else "МБОУ"
        school_id = f"SCH{index + 1:03d}"
        schools.append({
            "id": school_id,
            "name": f"{kind} СОШ № {numbers[muni_index]} ({name})",
            "name_en": f"Secondary School No. {numbers[muni_index]} ({name_en})",
            "municipality": name,
            "municipality_en": name_en,
            "type": "school",
            "settlement": "urban" if urban else "rural",
            "language": "en" if index in english else "ru",
            "email": f"director@{school_id.lower()}.example.org",
            "letters": letters,
        })
    return schools


PARTNERS = (
    {"id": "UNI-AMGPGU", "name": "Амурский гуманитарно-педагогический государственный университет",
     "name_en": "Amur Humanitarian-Pedagogical State University",
     "municipality": "г. Комсомольск-на-Амуре", "municipality_en": "Komsomolsk-on-Amur",
     "type": "university", "settlement": "urban", "language": "ru", "email": "dpo@amgpgu.example.org"},
    {"id": "IRO-KHK", "name": "Хабаровский краевой институт развития образования",
     "name_en": "Khabarovsk Krai Institute of Educational Development",
     "municipality": "г. Хабаровск", "municipality_en": "Khabarovsk", "type": "iro",
     "settlement": "urban", "language": "ru", "email": "office@khkiro.example.org"},
)


def _participants(spec: SimulationSpec, schools: list[dict], rng: np.random.Generator) -> list[dict]:
    cohorts = np.array(["program", "comparison"])[rng.permutation(len(schools)) % 2]
    people, used_emails = [], set()
    for index, school in enumerate(schools):
        school["cohort"] = str(cohorts[index])
        size = 2 + int(rng.poisson(spec.team_size_mean - 2))
        if spec.small_institution_size is not None and index == 0:
            size = spec.small_institution_size
        for member in range(size):
            person = _person(rng, used_emails)
            person.update({
                "code": f"{school['letters']}-{school['id'][3:]}-{member + 1:02d}",
                "institution": school["id"],
                "cohort": school["cohort"],
                "role": str(rng.choice(ROLES, p=ROLE_SHARES)),
                "years_in_management": int(min(35, rng.gamma(2.0, 4.0))),
            })
            people.append(person)
    return people


# --------------------------------------------------------------------------- typed values


def _one_digit_typos(code: str, teammates: list[str]) -> list[str]:
    """Codes one mistyped digit away from ``code`` whose only one-edit neighbour in the team is
    ``code`` itself, so that a careful matcher can recover them unambiguously."""
    candidates = []
    for pos, ch in enumerate(code):
        if not ch.isdigit():
            continue
        for digit in "0123456789":
            typed = code[:pos] + digit + code[pos + 1:]
            neighbours = [t for t in teammates
                          if sum(a != b for a, b in zip(t, typed)) <= 1 and len(t) == len(typed)]
            if digit != ch and neighbours == [code]:
                candidates.append(typed)
    return candidates


def _typed_code(code: str, wave: str, teammates: list[str], typo_made: set[str],
                c: Contamination, rng: np.random.Generator) -> tuple[str, list[str]]:
    """The participant code as this participant typed it in this wave, with the defects applied."""
    typed, defects = code, []
    if wave != "pre" and code not in typo_made and rng.random() < c.code_typo:
        # One mistyped wave per participant: two different typos of one code are often one
        # edit apart from each other as well, which no matcher can resolve.
        typo_made.add(code)
        typed = str(rng.choice(_one_digit_typos(code, teammates)))
        defects.append("typo")
    if rng.random() < c.code_lookalike:
        typed = "".join(LOOKALIKES.get(ch, ch) for ch in typed)
        defects.append("lookalike")
    if rng.random() < c.code_case:
        typed = typed.lower()
        defects.append("case")
    if rng.random() < c.code_spacing:
        typed = typed.replace("-", " ") if rng.random() < 0.5 else " " + typed.replace("-", "") + " "
        defects.append("spacing")
    return typed, defects


def _label(value: int, scale: dict, female: bool, rng: np.random.Generator) -> str:
    spec = scale[value]
    label = spec["ru"]
    feminine = [v for v in spec.get("variants", []) if v.endswith("на") or "согласна" in v]
    if female and feminine and rng.random() < 0.8:
        label = feminine[0]
    if "ё" in label and rng.random() < 0.5:
        label = label.replace("ё", "е")
    draw = rng.random()
    if draw < 0.04:
        label = label.lower()
    elif draw < 0.08:
        label = label.replace(" ", "  ", 1) + " "
    return label


# --------------------------------------------------------------------------- writers


def _write_csv(path: Path, header: list[str], rows: list[list], *, encoding: str,
               delimiter: str, lineterminator: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=lineterminator)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


def _write_xlsx(path: Path, sheets: dict[str, tuple[list[str], list[list]]]) -> None:
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


# --------------------------------------------------------------------------- the study


class _StudyWriter:
    def __init__(self, spec: SimulationSpec, codebook: Codebook, out: Path):
        self.spec, self.codebook, self.out = spec, codebook, out
        self.rng = np.random.default_rng(spec.seed)
        self.truth: dict = {"submissions": [], "out_of_range": [], "skipped_cells": {}}
        self.typo_made: set[str] = set()

    # latent values per participant, domain and wave
    def latent(self, people: list[dict], schools: list[dict]) -> dict:
        spec, rng = self.spec, self.rng
        muni_effect = {m[0]: rng.normal(0, spec.sd_municipality) for m in MUNICIPALITIES}
        school_effect = {s["id"]: rng.normal(0, spec.sd_institution) for s in schools}
        school_muni = {s["id"]: s["municipality"] for s in schools}
        latent = {}
        for domain, effect in spec.did.items():
            for person in people:
                level = (spec.baseline + muni_effect[school_muni[person["institution"]]]
                         + school_effect[person["institution"]] + rng.normal(0, spec.sd_participant))
                gain = spec.time_effect + (effect if person["cohort"] == "program" else 0.0)
                pre = level + rng.normal(0, spec.sd_occasion)
                post = level + gain + rng.normal(0, spec.sd_occasion)
                latent[(person["code"], domain)] = {
                    "pre": pre,
                    "post": post,
                    "then": pre - spec.response_shift[person["cohort"]]
                    + rng.normal(0, spec.sd_occasion / 2),
                    "followup": level + spec.followup_retention_of_gain * gain
                    + rng.normal(0, spec.sd_occasion),
                }
        return latent

    def answers(self, person: dict, wave: str, latent: dict, domains: list[str],
                retrospective: bool = False) -> dict[str, int]:
        answers = {}
        for domain in domains:
            items = self.codebook.items_of(domain)
            theta = np.array([latent[(person["code"], domain)]["then" if retrospective else wave]])
            values = responses_from_latent(theta, items, self.spec.sd_item, self.rng,
                                           self.codebook.scale_points(items[0].scale)[1])[0]
            for item, value in zip(items, values):
                answers[("then:" if retrospective else "") + item.id] = int(value)
        return answers

    def submissions(self, people: list[dict], wave: str, latent: dict) -> list[dict]:
        """Who submits in this wave, with duplicates, careless answering and skips applied."""
        c, rng = self.spec.contamination, self.rng
        domains = list(self.spec.did)
        teams: dict[str, list[str]] = {}
        for person in people:
            teams.setdefault(person["institution"], []).append(person["code"])
        result = []
        for person in people:
            if not person["waves"][wave]:
                continue
            answers = self.answers(person, wave, latent, domains)
            if wave == "post":
                answers.update(self.answers(person, wave, latent, list(COMPETENCY_DOMAINS), True))
            careless = None
            if rng.random() < c.straightlining:
                constant = int(rng.integers(3, 6))
                answers = {key: constant for key in answers}
                careless = "straightlining"
            elif wave == "post" and rng.random() < c.speeding:
                careless = "speeding"
            start = WAVE_DATES[wave] + timedelta(days=int(rng.integers(0, 10)),
                                                 minutes=int(rng.integers(0, 600)))
            seconds_per_item = rng.uniform(0.8, 1.6) if careless == "speeding" else rng.uniform(5, 12)
            finish = start + timedelta(seconds=int(seconds_per_item * len(answers)) + 40)
            typed, defects = _typed_code(person["code"], wave, teams[person["institution"]],
                                         self.typo_made, c, rng)
            sub = {"person": person, "answers": answers, "careless": careless, "started": start,
                   "finished": finish, "typed": typed, "defects": defects, "duplicate": False}
            result.append(sub)
            if rng.random() < c.duplicates:
                again = dict(sub, answers=dict(answers), duplicate=True,
                             started=finish + timedelta(minutes=int(rng.integers(5, 180))))
                again["finished"] = again["started"] + (finish - start)
                for key in rng.choice(sorted(answers), 3, replace=False):
                    again["answers"][str(key)] = int(rng.integers(1, 6))
                result.append(again)
        for sub in result:
            for key in list(sub["answers"]):
                if rng.random() < c.skipped_item:
                    sub["answers"][key] = None
        result.sort(key=lambda s: (s["finished"], s["person"]["code"]))
        return result

    def record(self, wave: str, subs: list[dict]) -> None:
        """Ground truth per submission, with the row number a spreadsheet would show."""
        latest_complete: dict[str, int] = {}
        for index, sub in enumerate(subs):
            complete = all(v is not None for v in sub["answers"].values())
            code = sub["person"]["code"]
            previous = latest_complete.get(code)
            if previous is None or complete or not all(
                    v is not None for v in subs[previous]["answers"].values()):
                latest_complete[code] = index
        for index, sub in enumerate(subs):
            code = sub["person"]["code"]
            self.truth["submissions"].append({
                "wave": wave, "file": FILES[wave], "row": index + 2, "code": code,
                "typed_code": sub["typed"], "code_defects": sub["defects"],
                "institution": sub["person"]["institution"], "cohort": sub["person"]["cohort"],
                "kept": latest_complete[code] == index, "careless": sub["careless"],
                "skipped": sum(v is None for v in sub["answers"].values()),
            })

    def run(self, score_truth: bool = True) -> dict:
        spec, rng = self.spec, self.rng
        c = spec.contamination
        schools = _institutions(spec, rng)
        people = _participants(spec, schools, rng)
        for person in people:
            has_pre = rng.random() >= c.missing_pre
            has_post = rng.random() >= c.attrition_post
            person["waves"] = {"pre": has_pre, "post": has_post,
                               "followup": has_post and rng.random() < c.followup_share}
        latent = self.latent(people, schools)
        names = {s["id"]: s["name"] for s in schools}
        self.out.mkdir(parents=True, exist_ok=True)
        self.write_registry(schools)
        for wave, writer in (("pre", self.write_pre), ("post", self.write_post),
                             ("followup", self.write_followup)):
            subs = self.submissions(people, wave, latent)
            self.record(wave, subs)
            writer(subs, names)
        self.write_needs(schools, people)
        return self.ground_truth(people, schools, score_truth)

    def item_cells(self, sub: dict, items: list[Item], scale_of, prefix: str = "") -> list:
        cells = []
        for item in items:
            value = sub["answers"][prefix + item.id]
            cells.append("" if value is None else scale_of(value, item))
        return cells

    def likert(self, sub: dict):
        return lambda value, item: _label(value, self.codebook.scales[item.scale],
                                          sub["person"]["female"], self.rng)

    def write_registry(self, schools: list[dict]) -> None:
        columns = ["id", "name", "name_en", "municipality", "municipality_en", "type", "settlement",
                   "language", "email"]
        rows = [[entry[col] for col in columns] for entry in [*PARTNERS, *schools]]
        _write_csv(self.out / FILES["institutions"], columns, rows, encoding="utf-8",
                   delimiter=",", lineterminator="\n")

    def competency_items(self) -> list[Item]:
        return [i for d in COMPETENCY_DOMAINS for i in self.codebook.items_of(d)]

    def write_pre(self, subs: list[dict], names: dict) -> None:
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
        _write_csv(self.out / FILES["pre"], header, rows, encoding="utf-8", delimiter=",",
                   lineterminator="\n")
        self.truth["skipped_cells"]["pre"] = sum(
            v is None for s in subs for v in s["answers"].values())

    def write_post(self, subs: list[dict], names: dict) -> None:
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
        _write_xlsx(self.out / FILES["post"], {"Ответы": (header, rows), "Сводка": summary})
        self.truth["skipped_cells"]["post"] = sum(
            v is None for s in subs for v in s["answers"].values())

    def write_followup(self, subs: list[dict], names: dict) -> None:
        items = self.competency_items()
        header = ["Дата и время", "Код участника", "Образовательная организация",
                  "Адрес электронной почты", *[i.ru for i in items]]
        rows = []
        for sub in subs:
            p = sub["person"]
            rows.append([sub["finished"].strftime("%d.%m.%Y %H:%M"), sub["typed"],
                         names[p["institution"]], p["email"],
                         *self.item_cells(sub, items, lambda value, item: str(value))])
        # Out-of-range values, as a hand recode in Excel produces them.
        count = min(self.spec.contamination.out_of_range_cells, len(rows))
        for row_index in sorted(self.rng.choice(len(rows), count, replace=False).tolist()):
            col = 4 + int(self.rng.integers(0, len(items)))
            bad = str(self.rng.choice(["0", "6", "7", "55"]))
            rows[row_index][col] = bad
            self.truth["out_of_range"].append({"file": FILES["followup"], "row": row_index + 2,
                                               "column": header[col], "value": bad})
        _write_csv(self.out / FILES["followup"], header, rows, encoding="cp1251",
                   delimiter=";", lineterminator="\r\n")
        self.truth["skipped_cells"]["followup"] = sum(
            v is None for s in subs for v in s["answers"].values())

    def write_needs(self, schools: list[dict], people: list[dict]) -> None:
        """Instrument B: needs of university, IRO and school respondents, rated at entry."""
        rng, codebook = self.rng, self.codebook
        areas = codebook.need_areas
        groups = {"university": 0.13, "iro": 0.12, "school": 0.75}
        # Each group has its own profile: a true mean importance per area (latent 1-5 metric).
        profiles = {g: np.clip(3.6 + rng.normal(0, 0.45, len(areas)), 2.2, 4.7) for g in groups}
        format_probs = {"university": [0.6, 0.5, 0.3, 0.3, 0.7], "iro": [0.7, 0.6, 0.4, 0.5, 0.5],
                        "school": [0.5, 0.7, 0.5, 0.6, 0.4]}
        format_codes = list(codebook.fields["formats"]["labels"])
        school_names = [s["name"] for s in schools]
        partner_names = {"university": PARTNERS[0]["name"], "iro": PARTNERS[1]["name"]}
        muni_of = {s["name"]: s["municipality"] for s in schools}
        stakeholder_labels = codebook.fields["stakeholder"]["labels"]
        header = ["Отметка времени", "Адрес электронной почты", "Кого вы представляете?",
                  "Ваша организация", "Ваша должность", "Муниципальное образование"]
        header += [f"{NEEDS_PROMPT} [{a['ru']}]" for a in areas]
        header += [FORMATS_QUESTION]
        draws = rng.choice(list(groups), self.spec.n_needs, p=list(groups.values()))
        rows, used = [], {p["email"] for p in people}
        truth_groups = {g: 0 for g in groups}
        for index, group in enumerate(draws):
            group = str(group)
            truth_groups[group] += 1
            person = _person(rng, used)
            organisation = (str(rng.choice(school_names)) if group == "school"
                            else partner_names[group])
            municipality = muni_of.get(organisation, PARTNERS[0 if group == "university" else 1]["municipality"])
            role = (codebook.label("role", str(rng.choice(ROLES, p=ROLE_SHARES)), "ru")
                    if group == "school" else "Другое")
            values = np.clip(np.rint(profiles[group] + rng.normal(0, 0.8, len(areas))), 1, 5)
            labels = [codebook.scales["importance5"][int(v)]["ru"] for v in values]
            chosen = [codebook.fields["formats"]["labels"][code]["ru"]
                      for code, prob in zip(format_codes, format_probs[group]) if rng.random() < prob]
            stamp = WAVE_DATES["needs"] + timedelta(minutes=int(index * 37 + rng.integers(0, 30)))
            rows.append([stamp.strftime("%d.%m.%Y %H:%M:%S"), person["email"],
                         stakeholder_labels[group]["ru"], organisation, role, municipality,
                         *labels, ", ".join(chosen)])
        _write_csv(self.out / FILES["needs"], header, rows, encoding="utf-8-sig", delimiter=",",
                   lineterminator="\n")
        self.truth["needs"] = {
            "respondents": truth_groups,
            "true_mean_importance": {g: {a["id"]: round(float(v), 4) for a, v in zip(areas, p)}
                                     for g, p in profiles.items()},
            "format_probability": {g: dict(zip(format_codes, p)) for g, p in format_probs.items()},
        }

    def ground_truth(self, people: list[dict], schools: list[dict], score_truth: bool = True) -> dict:
        spec = self.spec
        subs = self.truth["submissions"]
        counts = {}
        for wave in ("pre", "post", "followup"):
            rows = [s for s in subs if s["wave"] == wave]
            counts[wave] = {
                "rows": len(rows),
                "duplicates": sum(not s["kept"] for s in rows),
                "participants": len({s["code"] for s in rows}),
                "straightlining": sum(s["careless"] == "straightlining" for s in rows if s["kept"]),
                "speeding": sum(s["careless"] == "speeding" for s in rows if s["kept"]),
                "near_miss_codes": sum("typo" in s["code_defects"] for s in rows if s["kept"]),
                "by_cohort": {cohort: len({s["code"] for s in rows if s["cohort"] == cohort})
                              for cohort in ("program", "comparison")},
            }
        present = {w: {p["code"] for p in people if p["waves"][w]} for w in ("pre", "post", "followup")}
        effects = (true_score_effects(spec, self.codebook) if score_truth
                   else {"did": None, "response_shift": None})
        spec_dict = asdict(spec)
        return {
            "generator": "dpo_eval.simulate",
            "spec": spec_dict,
            "files": FILES,
            "true_effects": {
                "latent_did": spec.did,
                "score_did": effects["did"],
                "time_effect_latent": spec.time_effect,
                "response_shift_latent": spec.response_shift,
                "response_shift_score": effects["response_shift"],
            },
            "variance_components_latent": {
                "municipality_sd": spec.sd_municipality, "institution_sd": spec.sd_institution,
                "participant_sd": spec.sd_participant, "occasion_sd": spec.sd_occasion,
                "item_sd": spec.sd_item},
            "institutions": {"schools": len(schools),
                             "with_participants": len({p["institution"] for p in people}),
                             "cohort": {s["id"]: s["cohort"] for s in schools}},
            "participants": {"enrolled": len(people),
                             "by_cohort": {c: sum(p["cohort"] == c for p in people)
                                           for c in ("program", "comparison")}},
            "waves": counts,
            "matched": {"pre_post": len(present["pre"] & present["post"]),
                        "pre_followup": len(present["pre"] & present["followup"]),
                        "post_only": len(present["post"] - present["pre"]),
                        "pre_only": len(present["pre"] - present["post"])},
            "submissions": subs,
            "out_of_range": self.truth["out_of_range"],
            "skipped_cells": self.truth["skipped_cells"],
            "needs": self.truth["needs"],
        }


def simulate_study(spec: SimulationSpec, codebook: Codebook, out: Path, truth_path: Path,
                   score_truth: bool = True) -> dict:
    """Write the raw exports of one simulated study to ``out`` and its ground truth to
    ``truth_path``. ``score_truth=False`` skips the Monte Carlo of the true effects on the
    score metric (for simulation studies that compute it once for many seeds)."""
    truth = _StudyWriter(spec, codebook, Path(out)).run(score_truth)
    truth_path = Path(truth_path)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                          encoding="utf-8")
    return truth


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dpo_eval.simulate",
        description="Write a simulated DPO evaluation study (raw survey exports) and its ground truth.")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="random seed (demo: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the raw exports")
    parser.add_argument("--truth", type=Path, help="ground-truth JSON (default: OUT/../truth.json)")
    parser.add_argument("--codebook", type=Path, default=Path("config/codebook.yaml"))
    parser.add_argument("--schools", type=int, default=60, help="number of schools")
    parser.add_argument("--municipalities", type=int, default=14, choices=range(1, 17),
                        metavar="1..16", help="number of municipalities")
    parser.add_argument("--team-size", type=float, default=4.0, help="mean team size per school (>= 2)")
    parser.add_argument("--needs", type=int, default=300, help="needs-assessment respondents")
    parser.add_argument("--contamination", type=float, default=1.0,
                        help="multiplier of all defect rates: 0 gives clean data, 2 doubles them")
    parser.add_argument("--effect-scale", type=float, default=1.0,
                        help="multiplier of the true program effects (0 gives a null study)")
    parser.add_argument("--small-institution", type=int, default=None,
                        help="give the first school exactly this many participants")
    args = parser.parse_args(argv)
    spec = SimulationSpec(seed=args.seed, n_schools=args.schools,
                          n_municipalities=args.municipalities, team_size_mean=args.team_size,
                          n_needs=args.needs, small_institution_size=args.small_institution,
                          contamination=Contamination().scaled(args.contamination))
    spec.did = {d: v * args.effect_scale for d, v in spec.did.items()}
    truth_path = args.truth or args.out.parent / "truth.json"
    truth = simulate_study(spec, load_codebook(args.codebook), args.out, truth_path)
    print(f"wrote {len(FILES)} files to {args.out}; ground truth in {truth_path}: "
          f"{truth['participants']['enrolled']} participants, "
          f"{truth['institutions']['schools']} schools")


if __name__ == "__main__":
    main()

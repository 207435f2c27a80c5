"""The design of a simulated study and its population.

Owns the true parameters (``SimulationSpec``), the defect rates (``Contamination``), the places
and names people come from, and the population drawn from them: the schools of the registry
with the two partner institutions, the participants with their codes, roles and contact data,
and which waves each participant answers. Draws come from the one generator stream handed in,
in a fixed order (see ``dpo_eval.simulate.generator``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from dpo_eval.core.study import COHORTS

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

# When each questionnaire opened; submissions spread over the following days.
WAVE_DATES = {"pre": datetime(2025, 9, 15, 9, 0), "post": datetime(2025, 12, 15, 9, 0),
              "followup": datetime(2026, 3, 16, 9, 0), "needs": datetime(2025, 5, 12, 9, 0)}

# The two partner institutions of the program, listed in the registry before the schools.
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
    # Non-invariance: item id -> shift of that item's intercept at the exit wave (keyed 1-5
    # metric, before rounding); the measurement-invariance check must find it. Empty: none.
    intercept_shift: dict = field(default_factory=dict)


def person(rng: np.random.Generator, used_emails: set[str]) -> dict:
    """A person with a Russian full name (feminine forms for women), a unique transliterated
    e-mail (recorded in ``used_emails``) and a mobile phone number."""
    female = rng.random() < 0.78
    surname = str(rng.choice(SURNAMES))
    if female:
        first = str(rng.choice(FIRST_NAMES_F))
        patronymic = str(rng.choice(PATRONYMICS)) + "на"
        surname = surname + "а"
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


def institutions(spec: SimulationSpec, rng: np.random.Generator) -> list[dict]:
    """The schools of the registry, spread over the first ``spec.n_municipalities``
    municipalities by their weights; ``spec.english_schools`` of them report in English."""
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


def participants(spec: SimulationSpec, schools: list[dict], rng: np.random.Generator) -> list[dict]:
    """Half of the schools (at random) join the program cohort, the rest the comparison cohort
    (written into each school); each sends a management team of at least two people, the first
    exactly ``spec.small_institution_size`` when it is given."""
    cohorts = np.array(COHORTS)[rng.permutation(len(schools)) % 2]
    people, used_emails = [], set()
    for index, school in enumerate(schools):
        school["cohort"] = str(cohorts[index])
        size = 2 + int(rng.poisson(spec.team_size_mean - 2))
        if spec.small_institution_size is not None and index == 0:
            size = spec.small_institution_size
        for member in range(size):
            entry = person(rng, used_emails)
            entry.update({
                "code": f"{school['letters']}-{school['id'][3:]}-{member + 1:02d}",
                "institution": school["id"],
                "cohort": school["cohort"],
                "role": str(rng.choice(ROLES, p=ROLE_SHARES)),
                "years_in_management": int(min(35, rng.gamma(2.0, 4.0))),
            })
            people.append(entry)
    return people


def assign_waves(people: list[dict], contamination: Contamination, rng: np.random.Generator) -> None:
    """Which waves each participant answers (``person["waves"]``): entry unless missed, exit
    unless lost to attrition, the follow-up only after an exit answer."""
    for entry in people:
        has_pre = rng.random() >= contamination.missing_pre
        has_post = rng.random() >= contamination.attrition_post
        entry["waves"] = {"pre": has_pre, "post": has_post,
                          "followup": has_post and rng.random() < contamination.followup_share}

"""Typography of numbers and counted nouns in the reports' languages, by rule.

One set of locale settings serves the tables, the running text and the tick labels of the
figures (``tick_formatter``), so that a figure never shows "0.5" next to a table's "0,5":

- decimal separator: comma in Russian (GOST 8.417 and common Russian typesetting), point in English;
- negative numbers with the typographic minus U+2212, not the ASCII hyphen-minus;
- thousands grouped by a narrow no-break space (U+202F) in Russian from five digits on
  (Мильчин, «Справочник издателя и автора»), by a comma in English from four digits on;
- a no-break space (U+00A0) between a number and its unit, so that a line never breaks there;
- nouns after numerals agree by the CLDR plural rules of Babel (``babel.Locale.plural_form``):
  "1 участник, 2 участника, 5 участников, 11 участников, 21 участник".
"""

from __future__ import annotations

import math
from decimal import Decimal
from dataclasses import dataclass
from functools import lru_cache

MINUS = "\u2212"
NBSP = "\u00a0"
NARROW_NBSP = "\u202f"


@dataclass(frozen=True)
class NumberStyle:
    decimal: str
    group: str
    group_from_digits: int  # integer parts of at least this many digits are grouped


STYLES = {
    "ru": NumberStyle(decimal=",", group=NARROW_NBSP, group_from_digits=5),
    "en": NumberStyle(decimal=".", group=",", group_from_digits=4),
}


def _group(integer_digits: str, style: NumberStyle) -> str:
    if len(integer_digits) < style.group_from_digits:
        return integer_digits
    groups = []
    while integer_digits:
        groups.insert(0, integer_digits[-3:])
        integer_digits = integer_digits[:-3]
    return style.group.join(groups)


def format_number(value: float, lang: str, digits: int = 2) -> str:
    """A number as the locale writes it, rounded to ``digits`` decimals, with U+2212 for a
    negative value ("−0,25"); a value that rounds to zero is written without a sign."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("a missing number reached the report; check the analysis tables")
    style = STYLES[lang]
    text = f"{abs(float(value)):.{digits}f}"
    integer, _, fraction = text.partition(".")
    negative = float(value) < 0 and float(text) != 0
    body = _group(integer, style) + (style.decimal + fraction if fraction else "")
    return (MINUS if negative else "") + body


def format_count(value: int, lang: str) -> str:
    """An integer count with the locale's thousands grouping ("12 345" / "12,345")."""
    return format_number(int(value), lang, 0)


def with_unit(number: str, unit: str) -> str:
    """A number and its unit joined by a no-break space ("0,50 балла", "25 %")."""
    return f"{number}{NBSP}{unit}"


@lru_cache(maxsize=None)
def _locale(lang: str):
    from babel import Locale

    return Locale.parse(lang)


def plural_category(count, lang: str) -> str:
    """The CLDR plural category of a count ("one", "few", "many", "other"). Pass a decimal
    quantity as ``decimal.Decimal`` with its printed digits ("0.50"): CLDR decides by them
    (Russian "0,50 балла", "1,00 балла" but "1 балл")."""
    if isinstance(count, Decimal):
        return _locale(lang).plural_form(abs(count))
    return _locale(lang).plural_form(abs(int(count)))


def plural(count: int, forms: dict, lang: str) -> str:
    """The form of a noun that agrees with ``count``. ``forms`` maps CLDR categories to word
    forms; a category a language does not use may be left out where "other" covers it."""
    category = plural_category(count, lang)
    if category in forms:
        return forms[category]
    if "other" in forms:
        return forms["other"]
    raise KeyError(f"no plural form {category!r} (for {count}) among {sorted(forms)}")


def counted(count: int, forms: dict, lang: str) -> str:
    """A numeral and the noun that agrees with it: "251 участник", "34 участника"."""
    return f"{format_count(count, lang)} {plural(count, forms, lang)}"


def tick_formatter(lang: str, digits: int | None = None, percent: bool = False):
    """A matplotlib tick formatter writing tick values as the tables do. ``digits`` None
    chooses the fewest decimals that tell the ticks apart (like matplotlib's default)."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _position) -> str:
        if percent:
            return format_number(abs(value) * 100, lang, 0) + (NARROW_NBSP if lang == "ru" else "") + "%"
        if digits is not None:
            return format_number(value, lang, digits)
        for decimals in range(0, 4):
            if abs(round(value, decimals) - value) < 1e-9:
                return format_number(value, lang, decimals)
        return format_number(value, lang, 3)

    return FuncFormatter(label)

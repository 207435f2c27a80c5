"""Formatting of numbers, intervals, dates and word lists for the reader's language, the
reports' strings, and the numbering of tables and figures."""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path

import pandas as pd
import yaml

from dpo_eval.reporting.typography import format_number, plural, with_unit


def format_optional(value, lang: str, digits: int = 2, dash: str = "—") -> str:
    return dash if value is None or pd.isna(value) else format_number(float(value), lang, digits)


def format_p(p: float, lang: str) -> str:
    """APA-style p-value: "p < 0.001" below 0.001, otherwise three decimals."""
    if p < 0.001:
        return f"p\u00a0<\u00a0{format_number(0.001, lang, 3)}"
    return f"p\u00a0=\u00a0{format_number(p, lang, 3)}"


def format_ci(low: float, high: float, lang: str, digits: int = 2) -> str:
    separator = "; " if lang == "ru" else ", "
    return f"[{format_number(low, lang, digits)}{separator}{format_number(high, lang, digits)}]"


def format_date(iso_date: str, lang: str) -> str:
    year, month, day = str(iso_date).split("-")
    return f"{day}.{month}.{year}" if lang == "ru" else str(iso_date)


def format_share(share: float, lang: str) -> str:
    """A share in per cent: "25 %" with a narrow no-break space in Russian (GOST 8.417), "25%" in English."""
    return format_number(100 * share, lang, 0) + ("\u202f%" if lang == "ru" else "%")


def points(value: float, strings: dict, lang: str, digits: int = 2) -> str:
    """A difference on the score scale with its unit: "0,50 балла", "1.00 points"."""
    number = format_number(value, lang, digits)
    quantity = Decimal(f"{abs(value):.{digits}f}")
    return with_unit(number, plural(quantity, strings["nouns"]["point"], lang))


def join_words(words: list[str], strings: dict) -> str:
    """"a, b и c": commas between the items, the language's "and" before the last."""
    words = list(words)
    if len(words) < 2:
        return "".join(words)
    return ", ".join(words[:-1]) + strings["and"] + words[-1]


def quote(text: str, lang: str) -> str:
    """«…» in Russian, “…” in English."""
    return f"«{text}»" if lang == "ru" else f"\u201c{text}\u201d"


def load_strings(i18n_dir: str | Path, lang: str) -> dict:
    with open(Path(i18n_dir) / f"{lang}.yaml", encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def svg_image(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


class Numbering:
    """Numbers of tables and figures in document order, for captions and cross-references:
    ``order`` lists the ids as they appear, so a reference before the object gets its number.
    Only ids of objects the document really shows may be listed: a listed id that is never
    shown leaves a gap in the numbers."""

    def __init__(self, order: tuple[str, ...] = ()) -> None:
        self.numbers: dict[str, int] = {}
        self.counts = {"tab": 0, "fig": 0}
        for key in order:
            self[key]

    def __getitem__(self, key: str) -> int:
        if key not in self.numbers:
            kind = key.split("-")[0]
            self.counts[kind] += 1
            self.numbers[key] = self.counts[kind]
        return self.numbers[key]

"""The defects injected into the raw exports: what the ingest stage must detect or repair.

Owns, at the rates of ``Contamination``: participant codes typed with a wrong digit, Latin
look-alike letters, lower case or broken spacing; careless responding (straightlining and
speeding); repeated submissions with a few answers changed; skipped items; the spelling
variants of Likert labels (feminine forms, case, doubled spaces, "е" for "ё"); and out-of-range
numbers left by a hand recode in Excel. Each function draws from the generator stream it is
given, in a fixed order.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from dpo_eval.simulate.design import Contamination

# Latin letters that look like Cyrillic ones: what a participant on an English keyboard types.
LOOKALIKES = {"А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
              "С": "C", "Т": "T", "Х": "X", "У": "Y"}
# What a hand recode of labels to numbers leaves in a cell of the 1-5 scale.
OUT_OF_RANGE_VALUES = ["0", "6", "7", "55"]


def one_digit_typos(code: str, teammates: list[str]) -> list[str]:
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


def typed_code(code: str, wave: str, teammates: list[str], typo_made: set[str],
               c: Contamination, rng: np.random.Generator) -> tuple[str, list[str]]:
    """The participant code as this participant typed it in this wave, with the defects applied."""
    typed, defects = code, []
    if wave != "pre" and code not in typo_made and rng.random() < c.code_typo:
        # One mistyped wave per participant: two different typos of one code are often one
        # edit apart from each other as well, which no matcher can resolve.
        typo_made.add(code)
        typed = str(rng.choice(one_digit_typos(code, teammates)))
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


def careless_responding(answers: dict, wave: str, c: Contamination,
                        rng: np.random.Generator) -> tuple[dict, str | None]:
    """Straightlining (every answer one constant of 3-5) in any wave, or else speeding at exit
    (the timing is drawn by the caller); returns the answers and the kind, None when careful."""
    if rng.random() < c.straightlining:
        constant = int(rng.integers(3, 6))
        return {key: constant for key in answers}, "straightlining"
    if wave == "post" and rng.random() < c.speeding:
        return answers, "speeding"
    return answers, None


def resubmission(sub: dict, rng: np.random.Generator) -> dict:
    """The same participant's second submission, minutes to hours after the first, with the
    same duration and three answers changed."""
    answers = sub["answers"]
    again = dict(sub, answers=dict(answers),
                 started=sub["finished"] + timedelta(minutes=int(rng.integers(5, 180))))
    again["finished"] = again["started"] + (sub["finished"] - sub["started"])
    for key in rng.choice(sorted(answers), 3, replace=False):
        again["answers"][str(key)] = int(rng.integers(1, 6))
    return again


def skip_items(subs: list[dict], rate: float, rng: np.random.Generator) -> None:
    """Blank each answer (None) with probability ``rate``, submission by submission."""
    for sub in subs:
        for key in list(sub["answers"]):
            if rng.random() < rate:
                sub["answers"][key] = None


def likert_label(value: int, scale: dict, female: bool, rng: np.random.Generator) -> str:
    """The label of ``value`` as a respondent's form shows it: mostly the feminine variant for
    women, "е" for "ё" half of the time, now and then lower case or a doubled space."""
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


def out_of_range_cells(rows: list[list], header: list[str], first_item: int, n_items: int,
                       count: int, file: str, rng: np.random.Generator) -> list[dict]:
    """Overwrite ``count`` item cells (one in each of as many distinct rows, the items starting at
    column ``first_item``) with impossible numbers; returns where, as a spreadsheet numbers rows."""
    injected = []
    count = min(count, len(rows))
    for row_index in sorted(rng.choice(len(rows), count, replace=False).tolist()):
        col = first_item + int(rng.integers(0, n_items))
        bad = str(rng.choice(OUT_OF_RANGE_VALUES))
        rows[row_index][col] = bad
        injected.append({"file": file, "row": row_index + 2, "column": header[col], "value": bad})
    return injected

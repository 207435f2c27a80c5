"""Columns: which raw column holds which codebook field or item, checked against the codebook."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from dpo_eval.core.codebook import Codebook, WaveContent
from dpo_eval.core.errors import InputError
from dpo_eval.core.readers import RawTable
from dpo_eval.core.text import fold


@dataclass(frozen=True)
class ColumnMap:
    """Which raw column holds which field or item."""

    fields: dict[str, str]
    items: dict[str, str]          # item id -> column
    retrospective: dict[str, str]  # item id -> column ("then" ratings)


# A header this long (after folding), or one asking something, is a question, not an ID or a
# technical column of the form service: an unrecognised one is reported.
QUESTION_MIN_CHARS = 30
_QUESTION_PART = re.compile(r"\[([^\[\]]+)\]\s*$|/\s*([^/]+)$")


def _matches_header(folded_header: str, accepted: list[str]) -> bool:
    return any(folded_header == fold(h) or folded_header.startswith(fold(h)) for h in accepted)


def _question_part(folded_header: str) -> str:
    """The statement of a matrix question's header: Google Forms put it in [brackets] after the
    prompt, Yandex Forms after a slash; otherwise the whole header."""
    match = _QUESTION_PART.search(folded_header)
    return (match.group(1) or match.group(2)).strip() if match else folded_header


def _similarity(expected: str, header: str) -> float:
    folded = fold(header)
    return max(difflib.SequenceMatcher(None, fold(expected), candidate).ratio()
               for candidate in (folded, _question_part(folded)))


def closest_header(expected: list[str], headers: list[str], cutoff: float = 0.5) -> str | None:
    """The header most similar to any of the ``expected`` texts (difflib ratio, also against
    the statement part of a matrix-question header), or None when none reaches ``cutoff``."""
    scored = [(max(_similarity(text, header) for text in expected), header) for header in headers]
    best = max(scored, default=(0.0, None), key=lambda pair: pair[0])
    return best[1] if best[0] >= cutoff else None


def looks_like_question(header: str) -> bool:
    folded = fold(header)
    return len(folded) >= QUESTION_MIN_CHARS or "?" in folded


def closest_text(closest: str | None) -> str:
    return f"closest header found: '{closest}'" if closest else "no similar header found"


def map_columns(table: RawTable, codebook: Codebook, required: tuple[str, ...],
                problems: list[InputError], warnings: list[InputError],
                content: WaveContent | None = None, other_known: set[str] = frozenset(),
                unknown_columns: str = "error", wave: str | None = None) -> ColumnMap:
    """Recognise fields by their header texts and items by their question text in the header,
    and check the file against what the codebook expects.

    With ``content`` (a competency wave), every item and retrospective item the codebook expects
    in the wave must have exactly one column, and no other item may have one. Missing
    ``required`` fields, and unrecognised question-like columns (``unknown_columns``: "error"
    or "warning"), are reported too. ``other_known`` are columns the caller recognises itself."""
    columns, unrecognised = _recognise_columns(table, codebook, problems, other_known)
    expected_fields = tuple(dict.fromkeys([*required, *(content.fields if content else ())]))
    # A header offered as the closest match of a missing column is not reported again as unknown.
    cited = _report_missing_fields(table, codebook, columns.fields, expected_fields, required, wave, problems)
    if content is not None:
        cited |= _check_wave_items(table, codebook, columns, content, unrecognised, cited, wave, problems)
    for column in unrecognised:
        if column in cited:
            continue
        found = InputError(
            table.path, 1, column,
            "looks like a question but is neither an item nor a field of the codebook",
            "add its text to the codebook (as an item, or to the headers of a field), or delete "
            "the column if it is not part of the study; set cleaning.unknown_columns: warning "
            "to only list such columns in the log")
        (problems if unknown_columns == "error" else warnings).append(found)
    return columns


def _recognise_columns(table: RawTable, codebook: Codebook, problems: list[InputError],
                       other_known: set[str]) -> tuple[ColumnMap, list[str]]:
    """Each column as an item (by its question text), a retrospective item (the text and the
    codebook's marker) or a field (by its headers); question-like columns left over."""
    fields: dict[str, str] = {}
    items: dict[str, str] = {}
    retro: dict[str, str] = {}
    marker = fold(codebook.retrospective_marker)
    item_texts = [(item.id, fold(item.ru)) for item in codebook.items]
    unrecognised = []
    for column in table.frame.columns:
        folded = fold(column)
        matched_item = next((item_id for item_id, text in item_texts if text in folded), None)
        if matched_item is not None:
            target = retro if marker in folded else items
            if matched_item in target:
                problems.append(InputError(table.path, 1, column,
                                           f"is a second column for item '{matched_item}' (first: "
                                           f"'{target[matched_item]}')", "remove one of the two columns"))
            else:
                target[matched_item] = column
            continue
        field = next((name for name, spec in codebook.fields.items()
                      if _matches_header(folded, spec["headers"])), None)
        if field is not None:
            if field in fields:
                problems.append(InputError(table.path, 1, column,
                                           f"is a second column for '{field}' (first: "
                                           f"'{fields[field]}')", "remove or rename one of the two columns"))
            else:
                fields[field] = column
        elif column not in other_known and looks_like_question(column):
            unrecognised.append(column)
    return ColumnMap(fields, items, retro), unrecognised


def _report_missing_fields(table: RawTable, codebook: Codebook, fields: dict[str, str],
                           expected_fields: tuple[str, ...], required: tuple[str, ...],
                           wave: str | None, problems: list[InputError]) -> set[str]:
    """A problem for each expected field without a column, naming the closest header; returns
    the headers so named."""
    cited: set[str] = set()
    for name in expected_fields:
        if name in fields:
            continue
        expected = codebook.fields[name]["headers"]
        closest = closest_header(expected, [c for c in table.frame.columns
                                            if c not in fields.values()], cutoff=0.3)
        cited.add(closest)
        problems.append(InputError(
            table.path, 1, None,
            f"required column for '{name}' not found (expected a header like {expected!r}; "
            f"{closest_text(closest)})",
            f"rename the column or add its header to fields.{name}.headers in the codebook"
            + (f"; if this wave does not ask it, remove '{name}' from waves.{wave}.fields"
               if wave and name not in required else "")))
    return cited


def _check_wave_items(table: RawTable, codebook: Codebook, columns: ColumnMap, content: WaveContent,
                      unrecognised: list[str], cited: set[str], wave: str | None,
                      problems: list[InputError]) -> set[str]:
    """Every item (and retrospective item) the wave expects has a column, and no other item has
    one; returns the headers named as the closest match of a missing item."""
    cited = set(cited)
    known = {item.id: item for item in codebook.items}
    for kind, found, expected_ids, key in (("item", columns.items, content.items, "not_asked"),
                                           ("retrospective item", columns.retrospective,
                                            content.retrospective, "retrospective")):
        free = [c for c in unrecognised if c not in cited]
        for item_id in expected_ids:
            if item_id in found:
                continue
            closest = closest_header([known[item_id].ru], free)
            cited.add(closest)
            problems.append(InputError(
                table.path, 1, None,
                f"no column for {kind} {item_id} '{known[item_id].ru}' of wave {wave} "
                f"({closest_text(closest)})",
                "make the header contain the item text exactly as in the codebook (or "
                "correct the item's `ru` text there)" + (
                    f"; if the form of this wave does not ask it, list it under "
                    f"waves.{wave}.not_asked" if key == "not_asked" else "")))
        for item_id, column in found.items():
            if item_id not in expected_ids:
                problems.append(InputError(
                    table.path, 1, column,
                    f"is a column for {kind} {item_id}, which the codebook does not expect "
                    f"in wave {wave}",
                    (f"remove {item_id} (or its domain) from waves.{wave}.not_asked in the "
                     "codebook" if key == "not_asked" else
                     f"list {item_id} (or its domain) under waves.{wave}.retrospective in "
                     "the codebook") + ", or remove the column"))
    return cited

"""Ingest: raw survey exports -> pseudonymised, analysis-ready tables with an audit trail.

Personal data (names, e-mails, phones) are read here to confirm near-miss code matches and are
dropped before anything is written: no output of this module holds them.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dpo_eval import careless
from dpo_eval.codebook import REQUIRED_WAVE_FIELDS, Codebook, WaveContent, parse_number
from dpo_eval.codes import normalise_code, resolve_near_misses
from dpo_eval.errors import InputError, raise_all, shown
from dpo_eval.pseudonymise import participant_key, respondent_key
from dpo_eval.readers import RawTable, read_export
from dpo_eval.study import WAVE_ORDER, WAVES
from dpo_eval.text import fold

log = logging.getLogger(__name__)

REQUIRED_FIELDS = REQUIRED_WAVE_FIELDS
TIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
                "%d.%m.%Y")
PERSONAL_FIELDS = ("full_name", "email", "phone")


@dataclass(frozen=True)
class ColumnMap:
    """Which raw column holds which field or item."""

    fields: dict[str, str]
    items: dict[str, str]          # item id -> column
    retrospective: dict[str, str]  # item id -> column ("then" ratings)


# --------------------------------------------------------------------------- columns

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


def _closest_text(closest: str | None) -> str:
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
    cited: set[str] = set()
    expected_fields = tuple(dict.fromkeys([*required, *(content.fields if content else ())]))
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
            f"{_closest_text(closest)})",
            f"rename the column or add its header to fields.{name}.headers in the codebook"
            + (f"; if this wave does not ask it, remove '{name}' from waves.{wave}.fields"
               if wave and name not in required else "")))
    if content is not None:
        known = {item.id: item for item in codebook.items}
        for kind, found, expected_ids, key in (("item", items, content.items, "not_asked"),
                                               ("retrospective item", retro,
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
                    f"({_closest_text(closest)})",
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
    return ColumnMap(fields, items, retro)


# --------------------------------------------------------------------------- values

_INTEGRAL = re.compile(r"^([+-]?\d+)(?:[.,]0+)?$")


def _integral_text(folded: str) -> str:
    """An integral number written with decimals ("4,0", "4.0", Excel text cells) as "4"."""
    match = _INTEGRAL.match(folded)
    return str(int(match.group(1))) if match else folded


def _parse_times(table: RawTable, column: str, problems: list[InputError]) -> pd.Series:
    """Timestamps in the one format that reads the most cells; every other cell is reported."""
    values = table.frame[column].str.strip()
    best = None
    for time_format in TIME_FORMATS:
        parsed = pd.to_datetime(values, format=time_format, errors="coerce")
        if best is None or parsed.notna().sum() > best.notna().sum():
            best = parsed
    for row in values.index[best.isna()]:
        problems.append(InputError(table.path, int(row), column,
                                   f"{shown(values.loc[row])} is not a date and time in the format "
                                   "of the other rows",
                                   "use the export's original date format (e.g. 15.09.2025 10:49:28)"))
    return best


def _map_items(table: RawTable, columns: dict[str, str], codebook: Codebook,
               problems: dict[str, list[InputError]]) -> pd.DataFrame:
    """Raw answers as scale values (not yet reverse-keyed). Cells that do not map are collected
    under problems["out_of_range"] (numbers that are not a point of the scale) or
    problems["unknown_labels"]."""
    result = {}
    items = {item.id: item for item in codebook.items}
    missing_codes = codebook.missing_codes
    for item_id, column in columns.items():
        item = items[item_id]
        lookup = codebook.label_lookup(item.scale)
        low, high = codebook.scale_points(item.scale)
        folded = table.frame[column].map(fold)
        values = folded.map(_integral_text).map(lookup)
        unmapped = values.isna() & ~folded.isin(missing_codes)
        for row in folded.index[unmapped]:
            raw = table.frame.loc[row, column]
            number = parse_number(folded.loc[row])
            if number is not None:
                kind = "out_of_range"
                problem = (f"value {shown(raw)} is outside the scale {low}..{high}"
                           if not low <= number <= high else
                           f"value {shown(raw)} is not one of the scale points {low}..{high}")
                fix = "correct the value, or set cleaning.out_of_range: missing to treat it as missing"
            else:
                kind, problem = "unknown_labels", f"label {shown(raw)} is not a label of scale '{item.scale}'"
                fix = (f"add it as a variant of the right value under scales.{item.scale} in the "
                       "codebook, or correct the cell")
            problems[kind].append(InputError(table.path, int(row), column, problem, fix))
        result[item_id] = values.astype(float)
    return pd.DataFrame(result, index=table.frame.index)


def _numeric_field(table: RawTable, field: str, column: str, codebook: Codebook,
                   problems: list[InputError]) -> pd.Series:
    """A numeric covariate checked against its codebook entry: `type` (number or integer),
    `range` and the `units` words allowed after the number; every other cell is reported."""
    spec = codebook.fields[field]
    units = spec.get("units", [])
    low, high = spec.get("range", (-np.inf, np.inf))
    values = pd.Series(np.nan, index=table.frame.index)
    for row, raw in table.frame[column].items():
        if fold(raw) in codebook.missing_codes:
            continue
        number = parse_number(raw, units)
        if number is None:
            problem = f"{shown(raw)} is not a number" + (f" (optionally followed by "
                                                         f"{', '.join(units)})" if units else "")
        elif spec.get("type") == "integer" and not number.is_integer():
            problem = f"{shown(raw)} is not a whole number"
        elif not low <= number <= high:
            problem = f"{shown(raw)} is outside the range {low:g}..{high:g} of fields.{field}"
        else:
            values.loc[row] = number
            continue
        problems.append(InputError(table.path, int(row), column, problem,
                                   "write the number in digits (e.g. 5), or leave it empty; "
                                   f"or set cleaning.invalid_covariates: missing"))
    return values


def _map_labels(table: RawTable, field: str, codebook: Codebook,
                problems: list[InputError], column: str) -> pd.Series:
    lookup = codebook.field_lookup(field)
    folded = table.frame[column].map(fold)
    values = folded.map(lookup)
    unmapped = values.isna() & ~folded.isin(codebook.missing_codes)
    known = ", ".join(spec["ru"] for spec in codebook.fields[field]["labels"].values())
    for row in folded.index[unmapped]:
        problems.append(InputError(table.path, int(row), column,
                                   f"{shown(table.frame.loc[row, column])} is not a known {field}",
                                   f"use one of: {known}; or add a variant in the codebook"))
    return values


def _institutions(table: RawTable, column: str, registry: pd.DataFrame,
                  problems: list[InputError]) -> pd.Series:
    lookup = {fold(name): iid for iid, name in zip(registry["id"], registry["name"])}
    lookup.update({fold(iid): iid for iid in registry["id"]})
    folded = table.frame[column].map(fold)
    ids = folded.map(lookup)
    for row in folded.index[ids.isna()]:
        raw = table.frame.loc[row, column]
        close = difflib.get_close_matches(raw, list(registry["name"]), n=1, cutoff=0.6)
        problems.append(InputError(table.path, int(row), column,
                                   f"institution {shown(raw)} is not in the registry"
                                   + (f" (did you mean {close[0]!r}?)" if close else ""),
                                   "add it to the institutions registry or correct the cell"))
    return ids


# --------------------------------------------------------------------------- one wave


def read_wave(wave: str, source: dict, codebook: Codebook, registry: pd.DataFrame,
              problems: list[InputError], value_problems: dict[str, list[InputError]],
              unknown_columns: str = "error") -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per submission: context, identity (for matching only) and item answers.

    Problems of structure and context go to ``problems``; answers that are not on their scale
    and invalid covariates go to ``value_problems`` by kind, which the cleaning policies may
    turn to missing. A file whose columns do not match the codebook is not read further."""
    frames, item_order, retro_order = [], [], []
    content = codebook.wave_content(wave)
    for file in source["files"]:
        table = read_export(file, source.get("sheet"))
        column_problems: list[InputError] = []
        warnings: list[InputError] = []
        columns = map_columns(table, codebook, REQUIRED_FIELDS, column_problems, warnings,
                              content=content, unknown_columns=unknown_columns, wave=wave)
        for warning in warnings:
            log.warning("%s", warning)
        if not columns.items and not columns.retrospective:
            raise InputError(table.path, 1, None, "no item of the codebook was recognised in the "
                             "headers", "check that the file is a competency questionnaire and "
                             "that the item texts in the codebook match the form")
        if column_problems:
            problems += column_problems
            continue
        frame = pd.DataFrame(index=table.frame.index)
        frame["source"] = table.name
        frame["row"] = table.frame.index.astype(int)
        frame["wave"] = wave
        frame["timestamp"] = _parse_times(table, columns.fields["timestamp"], problems)
        frame["started"] = (_parse_times(table, columns.fields["started"], problems)
                            if "started" in columns.fields else pd.NaT)
        frame["code_column"] = columns.fields["participant_code"]
        frame["code"] = table.frame[columns.fields["participant_code"]].map(normalise_code)
        blank = frame["code"] == ""
        for row in frame.index[blank]:
            problems.append(InputError(table.path, int(row), columns.fields["participant_code"],
                                       "participant code is empty",
                                       "fill in the code the participant was given"))
        frame["institution"] = _institutions(table, columns.fields["institution"], registry, problems)
        for field in ("role", "cohort"):
            frame[field] = (_map_labels(table, field, codebook, problems, columns.fields[field])
                            if field in columns.fields else np.nan)
        frame["cohort_column"] = columns.fields.get("cohort")
        frame["years_in_management"] = (
            _numeric_field(table, "years_in_management", columns.fields["years_in_management"],
                           codebook, value_problems["invalid_covariates"])
            if "years_in_management" in columns.fields else np.nan)
        identity = pd.Series([frozenset()] * len(frame), index=frame.index, dtype=object)
        for field in ("full_name", "email"):
            if field in columns.fields:
                values = table.frame[columns.fields[field]].map(fold)
                identity = pd.Series([ids | {(field, v)} if v else ids
                                      for ids, v in zip(identity, values)],
                                     index=frame.index, dtype=object)
        frame["identity"] = identity
        answers = _map_items(table, columns.items, codebook, value_problems)
        retro = _map_items(table, columns.retrospective, codebook, value_problems).add_prefix("then:")
        frames.append(pd.concat([frame, answers, retro], axis=1))
        item_order = item_order or list(columns.items)
        retro_order = retro_order or list(columns.retrospective)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame, item_order, retro_order


# --------------------------------------------------------------------------- the whole study


@dataclass
class IngestResult:
    responses: pd.DataFrame      # long, tidy, pseudonymised
    respondents: pd.DataFrame    # one row per participant and wave, with careless flags
    flow: pd.DataFrame
    match_audit: pd.DataFrame
    duplicates: pd.DataFrame
    invalid_values: pd.DataFrame  # answers set to missing by the cleaning policies
    needs: pd.DataFrame
    needs_formats: pd.DataFrame


def _apply_near_misses(submissions: pd.DataFrame, enabled: bool) -> pd.DataFrame:
    distinct = (submissions.groupby(["institution", "wave", "code"], sort=True)["identity"]
                .agg(lambda s: frozenset().union(*s)).reset_index())
    audit = resolve_near_misses(distinct)
    if not enabled:
        audit = audit.iloc[0:0]
    matched = audit[audit["status"] == "matched"]
    mapping = dict(zip(zip(matched["institution"], matched["typed_code"]), matched["matched_code"]))
    keys = list(zip(submissions["institution"], submissions["code"]))
    submissions["code"] = [mapping.get(k, k[1]) for k in keys]
    return audit


def _conflicting(a: dict[str, set[str]], b: dict[str, set[str]]) -> bool:
    """Two people, not one: they share a kind of identifying data (name, e-mail) and agree on
    none of the kinds they share."""
    shared = a.keys() & b.keys()
    return bool(shared) and not any(a[kind] & b[kind] for kind in shared)


def _people_behind_code(group: pd.DataFrame) -> list[list]:
    """The submissions of one (institution, code) grouped by the people who typed them.

    Submissions agreeing on a name or an e-mail are one person; then groups that do not
    conflict (see ``_conflicting``, e.g. one gave only a name, the other only an e-mail) are
    joined, earliest first. Submissions without any identifying data join the first person.
    Returns lists of submission indexes, earliest person first."""
    ordered = group.assign(_w=group["wave"].map(WAVE_ORDER)).sort_values(["_w", "timestamp", "row"])
    people: list[dict] = []
    anonymous = []
    for index, ids in ordered["identity"].items():
        if not ids:
            anonymous.append(index)
            continue
        mine: dict[str, set[str]] = {}
        for kind, value in ids:
            mine.setdefault(kind, set()).add(value)
        agreeing = [p for p in people if any(mine[k] & p["ids"].get(k, set()) for k in mine)]
        if agreeing:
            target = agreeing[0]
            for other in agreeing[1:]:
                people.remove(other)
                target["rows"] += other["rows"]
                for kind, values in other["ids"].items():
                    target["ids"].setdefault(kind, set()).update(values)
        else:
            target = {"ids": {}, "rows": []}
            people.append(target)
        target["rows"].append(index)
        for kind, values in mine.items():
            target["ids"].setdefault(kind, set()).update(values)
    joined: list[dict] = []
    for person in people:
        home = next((j for j in joined if not _conflicting(j["ids"], person["ids"])), None)
        if home is None:
            joined.append(person)
            continue
        home["rows"] += person["rows"]
        for kind, values in person["ids"].items():
            home["ids"].setdefault(kind, set()).update(values)
    if not joined:
        return [anonymous]
    joined[0]["rows"] += anonymous
    return [sorted(p["rows"], key=list(ordered.index).index) for p in joined]


def _where(submissions: pd.DataFrame, indexes) -> str:
    """'file row 3, 7; other.csv row 2': where submissions are, for a message or audit row."""
    parts = []
    rows = submissions.loc[list(indexes), ["source", "row"]]
    for source, group in rows.groupby("source", sort=False):
        numbers = ", ".join(str(int(r)) for r in group["row"])
        parts.append(f"{source} row{'s' if len(group) > 1 else ''} {numbers}")
    return "; ".join(parts)


def _resolve_code_collisions(submissions: pd.DataFrame, policy: str, tables: dict[str, Path],
                             problems: list[InputError]) -> list[dict]:
    """The same code given by different people (their names or e-mails differ) is a code
    collision, never a duplicate. ``policy`` "error" reports every collision with its rows;
    "separate" keeps the people apart (a suffix to the code of every later person) and returns
    an audit row per person kept apart."""
    audit = []
    # Only a code given with two different names (or e-mails) can hide two people.
    pairs = [(inst, code, kind, value) for inst, code, ids in
             zip(submissions["institution"], submissions["code"], submissions["identity"])
             for kind, value in ids]
    pairs = pd.DataFrame(pairs, columns=["institution", "code", "kind", "value"])
    varying = pairs.groupby(["institution", "code", "kind"])["value"].nunique()
    suspects = set(varying[varying > 1].index.droplevel("kind"))
    for (institution, code), group in submissions.groupby(["institution", "code"], sort=True):
        if (institution, code) not in suspects:
            continue
        people = _people_behind_code(group)
        if len(people) < 2:
            continue
        listing = "; ".join(f"person {n}: {_where(submissions, rows)}"
                            for n, rows in enumerate(people, start=1))
        if policy == "error":
            first = people[1][0]
            problems.append(InputError(
                tables[submissions.loc[first, "source"]], int(submissions.loc[first, "row"]),
                submissions.loc[first, "code_column"],
                f"participant code {code!r} of {institution} is used by different people (their "
                f"names or e-mails differ), not a duplicate submission: {listing}",
                "give each person their own code (correct it in the rows of one of them), or "
                "set cleaning.code_collisions: separate to analyse them as different participants"))
            continue
        for number, rows in enumerate(people[1:], start=2):
            submissions.loc[rows, "code"] = f"{code}#{number}"
            audit.append({"institution": institution,
                          "wave": submissions.loc[rows[0], "wave"],
                          "typed_code": code, "matched_code": f"{code}#{number}",
                          "status": "kept apart",
                          "evidence": f"code used by {len(people)} people whose names or e-mails "
                                      f"differ; person {number}: {_where(submissions, rows)}"})
    return audit


def _resolve_cohorts(kept: pd.DataFrame, policy: str, tables: dict[str, Path],
                     problems: list[InputError]) -> tuple[pd.Series, list[dict]]:
    """One cohort per participant. Waves that disagree are an error listing the participant's
    rows (``policy`` "error"), or the first or last wave's cohort is used (``policy`` "first"
    or "last") with an audit row per overruled cell. A participant no wave gives a cohort for
    is an error (they would vanish from the flow table)."""
    ordered = kept.assign(_w=kept["wave"].map(WAVE_ORDER)).sort_values(
        ["participant_key", "_w", "timestamp", "row"])
    decisions, found = [], []
    distinct = ordered.groupby("participant_key", sort=True)["cohort"].nunique()
    cohorts = ordered.dropna(subset=["cohort"]).groupby("participant_key")["cohort"].first()
    cohorts = cohorts[distinct.reindex(cohorts.index) == 1].to_dict()
    unsettled = set(distinct.index[distinct != 1])
    for key, group in ordered[ordered["participant_key"].isin(unsettled)].groupby(
            "participant_key", sort=True):
        given = group.dropna(subset=["cohort"])
        first = group.index[0]
        if given.empty:
            found.append(InputError(
                tables[kept.loc[first, "source"]], int(kept.loc[first, "row"]),
                kept.loc[first, "code_column"],
                f"no wave gives a cohort for participant {kept.loc[first, 'code']!r} of "
                f"{kept.loc[first, 'institution']} ({_where(kept, group.index)})",
                "add the cohort column to this wave's file (and list 'cohort' under its "
                "waves.<wave>.fields in the codebook), fill in the cohort, or correct the "
                "participant code to match the participant's other waves"))
            continue
        listing = "; ".join(f"{r.source} row {int(r.row)}: {r.cohort}" for r in given.itertuples())
        if policy == "error":
            odd = given.index[given["cohort"] != given["cohort"].iloc[0]][0]
            found.append(InputError(
                tables[kept.loc[odd, "source"]], int(kept.loc[odd, "row"]),
                kept.loc[odd, "cohort_column"],
                f"the cohort of participant {kept.loc[odd, 'code']!r} of "
                f"{kept.loc[odd, 'institution']} differs between waves ({listing})",
                "correct the cohort in the wrong row, or set cleaning.cohort_conflicts: first "
                "(or last) to use the cohort of the participant's first (or last) wave"))
            continue
        chosen = given.iloc[0 if policy == "first" else -1]
        cohorts[key] = chosen["cohort"]
        for row in given[given["cohort"] != chosen["cohort"]].itertuples():
            decisions.append({"file": row.source, "row": int(row.row), "column": row.cohort_column,
                              "problem": f"cohort {row.cohort!r} differs from {chosen['cohort']!r} "
                                         f"in {chosen['source']} row {int(chosen['row'])}; "
                                         f"{chosen['cohort']!r} used (cleaning.cohort_conflicts: "
                                         f"{policy})"})
    problems += sorted(found, key=lambda p: (str(p.path), p.row))
    return pd.Series(cohorts, dtype=object), decisions


def _resolve_duplicates(submissions: pd.DataFrame, item_columns: list[str]) -> pd.DataFrame:
    """Keep per participant and wave the latest complete submission (latest if none complete)."""
    submissions["complete"] = submissions[item_columns].notna().all(axis=1)
    ordered = submissions.sort_values(["participant_key", "wave", "complete", "timestamp", "row"])
    submissions["kept"] = ~ordered.duplicated(["participant_key", "wave"], keep="last").reindex(
        submissions.index)
    return submissions


def _careless_flags(kept: pd.DataFrame, items_by_wave: dict[str, list[str]],
                    settings: dict, codebook: Codebook) -> pd.DataFrame:
    """Careless-responding indices per kept submission, and the flags their thresholds give."""
    items = {item.id: item for item in codebook.items}
    parts = []
    for wave, columns in items_by_wave.items():
        subset = kept[kept["wave"] == wave]
        answers = subset[columns].to_numpy(dtype=float)
        item_of = [items[c.removeprefix("then:")] for c in columns]
        keyed = answers.copy()
        for index, item in enumerate(item_of):
            if item.reverse:
                low, high = codebook.scale_points(item.scale)
                keyed[:, index] = low + high - keyed[:, index]
        # The retrospective ("then") items of a domain form a scale of their own.
        scale_of = [("then:" if c.startswith("then:") else "") + item.domain
                    for c, item in zip(columns, item_of)]
        flags = pd.DataFrame(index=subset.index)
        flags["longstring_share"] = careless.longstring_share(answers)
        flags["irv"] = careless.irv(answers)
        flags["even_odd"] = careless.even_odd_consistency(keyed, scale_of)
        seconds = (subset["timestamp"] - subset["started"]).dt.total_seconds()
        flags["seconds_per_item"] = seconds / len(columns)
        parts.append(flags)
    flags = pd.concat(parts).reindex(kept.index)
    flags["flag_longstring"] = flags["longstring_share"] > settings["max_longstring_share"]
    flags["flag_irv"] = flags["irv"] < settings["min_irv"]
    flags["flag_speeding"] = flags["seconds_per_item"] < settings["min_seconds_per_item"]
    min_even_odd = settings.get("min_even_odd")
    flags["flag_even_odd"] = (flags["even_odd"] < min_even_odd) if min_even_odd is not None else False
    flag_columns = ["flag_longstring", "flag_irv", "flag_speeding", "flag_even_odd"]
    flags["careless"] = flags[flag_columns].any(axis=1)
    return flags


def _participant_context(kept: pd.DataFrame, cohorts: pd.Series) -> pd.DataFrame:
    """Cohort (resolved by ``_resolve_cohorts``), role and experience per participant: role and
    experience from the earliest wave that reports them (experience grows between waves)."""
    ordered = kept.assign(order=kept["wave"].map(WAVE_ORDER)).sort_values(["participant_key", "order"])
    context = ordered.groupby("participant_key")[["role", "years_in_management"]].first()
    context.insert(0, "cohort", cohorts.reindex(context.index))
    return context


def _flow(submissions: pd.DataFrame, respondents: pd.DataFrame, policy: str) -> pd.DataFrame:
    waves_per_participant = respondents.groupby("participant_key")["wave"].nunique()
    rows = []
    for (wave, cohort), group in respondents.groupby(["wave", "cohort"], sort=False):
        received = submissions[(submissions["wave"] == wave) & (submissions["cohort_final"] == cohort)]
        unmatched = int((waves_per_participant.reindex(group["participant_key"]) == 1).sum())
        n_careless = int(group["careless"].sum())
        excluded = n_careless if policy == "exclude" else 0
        rows.append({
            "wave": wave, "cohort": cohort, "received": len(received),
            "duplicates": int((~received["kept"]).sum()), "participants": len(group),
            "unmatched": unmatched, "careless": n_careless, "excluded": excluded,
            "analysed": len(group) - excluded,
            "reasons": (f"duplicates: latest complete submission kept; unmatched: seen in this "
                        f"wave only; careless: {policy}"),
        })
    flow = pd.DataFrame(rows)
    flow["wave_order"] = flow["wave"].map(WAVE_ORDER)
    return flow.sort_values(["wave_order", "cohort"]).drop(columns="wave_order").reset_index(drop=True)


def ingest_competencies(config: dict, codebook: Codebook, registry: pd.DataFrame,
                        secret: bytes) -> tuple[IngestResult, list[InputError]]:
    """Every wave's competency exports -> the ingest tables; every problem in the input is
    collected and raised at once (InputErrors), cells the cleaning policies set to missing or
    overrule are returned and listed in ``invalid_values``."""
    cleaning = config["cleaning"]
    problems: list[InputError] = []
    value_problems: dict[str, list[InputError]] = {"out_of_range": [], "unknown_labels": [],
                                                   "invalid_covariates": []}
    frames, items_by_wave, tables = [], {}, {}
    for wave in WAVES:
        if wave not in config["waves"]:
            continue
        tables.update({Path(f).name: Path(f) for f in config["waves"][wave]["files"]})
        frame, items, retro = read_wave(wave, config["waves"][wave], codebook, registry,
                                        problems, value_problems,
                                        cleaning.get("unknown_columns", "error"))
        frames.append(frame)
        items_by_wave[wave] = items + [f"then:{i}" for i in retro]
    set_missing = []
    for kind, found in value_problems.items():
        if cleaning.get(kind, "error") == "error":
            problems += found
        else:
            set_missing += found
    raise_all(problems)
    submissions = pd.concat(frames, ignore_index=True)
    item_columns = [c for c in submissions.columns if c in {i.id for i in codebook.items}
                    or c.startswith("then:")]
    audit = _apply_near_misses(submissions, cleaning["near_miss_matching"])
    kept_apart = _resolve_code_collisions(submissions, cleaning.get("code_collisions", "error"),
                                          tables, problems)
    raise_all(problems)
    audit = pd.concat([audit, pd.DataFrame(kept_apart, columns=audit.columns)], ignore_index=True)
    submissions["participant_key"] = [participant_key(secret, inst, code) for inst, code
                                      in zip(submissions["institution"], submissions["code"])]
    submissions = _resolve_duplicates(submissions, item_columns)
    kept = submissions[submissions["kept"]].copy()
    cohorts, decisions = _resolve_cohorts(kept, cleaning.get("cohort_conflicts", "error"),
                                          tables, problems)
    raise_all(problems)
    context = _participant_context(kept, cohorts)
    for column in context.columns:
        kept[column] = kept["participant_key"].map(context[column])
    submissions["cohort_final"] = submissions["participant_key"].map(context["cohort"])
    flags = _careless_flags(kept, items_by_wave, config["cleaning"]["careless"], codebook)
    kept = pd.concat([kept, flags], axis=1)
    place = registry.set_index("id")
    kept["municipality"] = kept["institution"].map(place["municipality"])
    kept["settlement"] = kept["institution"].map(place["settlement"])

    context_columns = ["participant_key", "institution", "municipality", "settlement", "cohort",
                       "role", "years_in_management", "wave"]
    flag_columns = ["longstring_share", "irv", "even_odd", "seconds_per_item", "flag_longstring",
                    "flag_irv", "flag_speeding", "flag_even_odd", "careless"]
    respondents = kept[context_columns + ["timestamp"] + flag_columns].copy()
    respondents["n_items_answered"] = kept[item_columns].notna().sum(axis=1)

    long = kept[context_columns + ["careless"] + item_columns].melt(
        id_vars=context_columns + ["careless"], var_name="item_column", value_name="raw_value")
    long = long.dropna(subset=["raw_value"])
    is_then = long["item_column"].str.startswith("then:")
    long["item"] = long["item_column"].str.removeprefix("then:")
    long.loc[is_then, "wave"] = "then"
    item_info = pd.DataFrame([{"item": i.id, "domain": i.domain, "reverse": i.reverse,
                               "low": codebook.scale_points(i.scale)[0],
                               "high": codebook.scale_points(i.scale)[1]} for i in codebook.items])
    long = long.merge(item_info, on="item", how="left")
    long["value"] = np.where(long["reverse"], long["low"] + long["high"] - long["raw_value"],
                             long["raw_value"]).astype(int)
    long["raw_value"] = long["raw_value"].astype(int)
    responses = long[["participant_key", "institution", "municipality", "settlement", "cohort",
                      "role", "years_in_management", "wave", "domain", "item", "raw_value",
                      "value", "careless"]]
    responses = (responses.assign(_w=responses["wave"].map(WAVE_ORDER))
                 .sort_values(["participant_key", "_w", "item"]).drop(columns="_w")
                 .reset_index(drop=True))

    duplicates = submissions.loc[~submissions["kept"], ["source", "row", "wave", "participant_key",
                                                        "timestamp", "complete"]]
    duplicates = duplicates.assign(rule="a later or more complete submission of the same "
                                   "participant in this wave was kept").reset_index(drop=True)
    invalid = pd.DataFrame([{"file": Path(p.path).name, "row": p.row, "column": p.column,
                             "problem": p.problem} for p in set_missing] + decisions,
                           columns=["file", "row", "column", "problem"])
    flow = _flow(submissions, respondents, config["cleaning"]["careless"]["policy"])
    audit = audit.copy()
    for column in ("typed_code", "matched_code"):
        # Codes identify people at their institution: the audit keeps their keys, not the codes.
        audit[column] = [("|".join(participant_key(secret, inst, c) for c in code.split("|")))
                         for inst, code in zip(audit["institution"], audit[column])]
    for decision in decisions:
        log.warning("cleaning decision: %(file)s, row %(row)s, column '%(column)s': %(problem)s",
                    decision)
    audit = audit.rename(columns={"typed_code": "typed_key", "matched_code": "matched_key"})
    result = IngestResult(responses, respondents.sort_values(["participant_key", "wave"])
                          .reset_index(drop=True), flow, audit, duplicates, invalid,
                          pd.DataFrame(), pd.DataFrame())
    return result, set_missing


def ingest_needs(source: dict, codebook: Codebook, registry: pd.DataFrame,
                 secret: bytes, unknown_columns: str = "error") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Instrument B: importance of need areas and preferred formats per respondent."""
    problems: list[InputError] = []
    frames, format_frames = [], []
    areas = {a["id"]: fold(a["ru"]) for a in codebook.need_areas}
    lookup = codebook.label_lookup("importance5")
    for file in source["files"]:
        table = read_export(file, source.get("sheet"))
        area_columns = {}
        for column in table.frame.columns:
            folded = fold(column)
            area = next((aid for aid, text in areas.items() if text in folded), None)
            if area:
                area_columns[area] = column
        column_problems: list[InputError] = []
        warnings: list[InputError] = []
        columns = map_columns(table, codebook, ("stakeholder", "institution"), column_problems,
                              warnings, other_known=set(area_columns.values()),
                              unknown_columns=unknown_columns)
        for warning in warnings:
            log.warning("%s", warning)
        others = [c for c in table.frame.columns if c not in area_columns.values()
                  and c not in columns.fields.values()]
        for area in sorted(set(areas) - set(area_columns)):
            closest = closest_header([areas[area]], others)
            column_problems.append(InputError(
                table.path, 1, None, f"no column for need area {area} "
                f"'{next(a['ru'] for a in codebook.need_areas if a['id'] == area)}' "
                f"({_closest_text(closest)})",
                "make the header contain the area text exactly as in the codebook's need_areas"))
        if column_problems:
            problems += column_problems
            continue
        keys = [respondent_key(secret, table.name, int(row)) for row in table.frame.index]
        base = pd.DataFrame({"respondent_key": keys}, index=table.frame.index)
        base["stakeholder"] = _map_labels(table, "stakeholder", codebook, problems,
                                          columns.fields["stakeholder"])
        base["institution"] = _institutions(table, columns.fields["institution"], registry, problems)
        for area, column in area_columns.items():
            folded = table.frame[column].map(fold)
            values = folded.map(lookup)
            for row in folded.index[values.isna() & ~folded.isin(codebook.missing_codes)]:
                problems.append(InputError(table.path, int(row), column,
                                           f"label {shown(table.frame.loc[row, column])} is not a label "
                                           "of scale 'importance5'", "add it as a variant in the codebook"))
            frames.append(base.assign(area=area, value=values))
        if "formats" in columns.fields:
            format_lookup = codebook.field_lookup("formats")
            column = columns.fields["formats"]
            chosen = table.frame[column].map(lambda cell: {format_lookup.get(fold(part), "?" + part)
                                                           for part in str(cell).split(",")
                                                           if part.strip()})
            for row in chosen.index:
                for unknown in sorted(c for c in chosen[row] if c.startswith("?")):
                    problems.append(InputError(table.path, int(row), column,
                                               f"format {unknown[1:].strip()!r} is not known",
                                               "add it under fields.formats.labels in the codebook"))
            for code in codebook.fields["formats"]["labels"]:
                format_frames.append(base.assign(format=code, chosen=chosen.map(lambda s: code in s)))
    raise_all(problems)
    place = registry.set_index("id")
    needs = pd.concat(frames, ignore_index=True)
    needs["municipality"] = needs["institution"].map(place["municipality"])
    needs = needs.dropna(subset=["value"]).astype({"value": int})
    formats = pd.concat(format_frames, ignore_index=True) if format_frames else pd.DataFrame(
        columns=["respondent_key", "stakeholder", "institution", "format", "chosen"])
    needs = needs.sort_values(["respondent_key", "area"]).reset_index(drop=True)
    formats = formats.sort_values(["respondent_key", "format"]).reset_index(drop=True)
    return needs[["respondent_key", "stakeholder", "institution", "municipality", "area", "value"]], formats

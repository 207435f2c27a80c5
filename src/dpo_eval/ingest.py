"""Ingest: raw survey exports -> pseudonymised, analysis-ready tables with an audit trail.

Personal data (names, e-mails, phones) are read here to confirm near-miss code matches and are
dropped before anything is written: no output of this module holds them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dpo_eval import careless
from dpo_eval.codebook import Codebook
from dpo_eval.codes import normalise_code, resolve_near_misses
from dpo_eval.errors import InputError, InputErrors
from dpo_eval.pseudonymise import participant_key, respondent_key
from dpo_eval.readers import RawTable, read_export
from dpo_eval.study import WAVE_ORDER, WAVES
from dpo_eval.text import fold

REQUIRED_FIELDS = ("timestamp", "participant_code", "institution")
REGISTRY_COLUMNS = ("id", "name", "municipality", "type", "settlement", "language", "email")
# English names for reports in English; where absent, the Russian names are used.
REGISTRY_OPTIONAL = ("name_en", "municipality_en")
TIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
                "%d.%m.%Y")
PERSONAL_FIELDS = ("full_name", "email", "phone")


@dataclass(frozen=True)
class ColumnMap:
    """Which raw column holds which field or item."""

    fields: dict[str, str]
    items: dict[str, str]          # item id -> column
    retrospective: dict[str, str]  # item id -> column ("then" ratings)


# --------------------------------------------------------------------------- registry


def load_registry(path: str | Path) -> pd.DataFrame:
    table = read_export(path)
    missing = [c for c in REGISTRY_COLUMNS if c not in table.frame.columns]
    if missing:
        raise InputError(path, 1, missing[0], f"required column(s) {', '.join(missing)} missing "
                         f"(present: {', '.join(table.frame.columns)})",
                         "add the column to the institutions registry")
    registry = table.frame[list(REGISTRY_COLUMNS)].copy()
    for column in REGISTRY_OPTIONAL:
        source = column.removesuffix("_en")
        registry[column] = (table.frame[column].where(table.frame[column].str.strip() != "", table.frame[source])
                            if column in table.frame.columns else table.frame[source])
    duplicated = registry["id"].duplicated()
    if duplicated.any():
        row = int(registry.index[duplicated][0])
        raise InputError(path, row, "id", f"institution id '{registry.loc[row, 'id']}' occurs twice",
                         "give every institution its own id")
    return registry.reset_index(drop=True)


# --------------------------------------------------------------------------- columns


def _matches_header(folded_header: str, accepted: list[str]) -> bool:
    return any(folded_header == fold(h) or folded_header.startswith(fold(h)) for h in accepted)


def map_columns(table: RawTable, codebook: Codebook, required: tuple[str, ...]) -> ColumnMap:
    """Recognise fields by their header texts and items by their question text in the header."""
    fields: dict[str, str] = {}
    items: dict[str, str] = {}
    retro: dict[str, str] = {}
    marker = fold(codebook.retrospective_marker)
    item_texts = [(item.id, fold(item.ru)) for item in codebook.items]
    for column in table.frame.columns:
        folded = fold(column)
        matched_item = next((item_id for item_id, text in item_texts if text in folded), None)
        if matched_item is not None:
            target = retro if marker in folded else items
            if matched_item in target:
                raise InputError(table.path, 1, column,
                                 f"is a second column for item '{matched_item}' (first: "
                                 f"'{target[matched_item]}')", "remove one of the two columns")
            target[matched_item] = column
            continue
        for name, spec in codebook.fields.items():
            if name not in fields and _matches_header(folded, spec["headers"]):
                fields[name] = column
                break
    missing = [name for name in required if name not in fields]
    if missing:
        name = missing[0]
        expected = codebook.fields[name]["headers"]
        closest = difflib.get_close_matches(expected[0], list(table.frame.columns), n=3, cutoff=0.3)
        raise InputError(table.path, 1, None,
                         f"required column for '{name}' not found (expected a header like "
                         f"{expected!r}; closest headers: {closest or 'none'})",
                         f"rename the column or add its header to fields.{name}.headers in the codebook")
    return ColumnMap(fields, items, retro)


# --------------------------------------------------------------------------- values


def _parse_times(table: RawTable, column: str) -> pd.Series:
    values = table.frame[column].str.strip()
    for time_format in TIME_FORMATS:
        parsed = pd.to_datetime(values, format=time_format, errors="coerce")
        if parsed.notna().all():
            return parsed
    bad = values[pd.to_datetime(values, format="mixed", dayfirst=True, errors="coerce").isna()]
    row = int(bad.index[0]) if len(bad) else int(values.index[0])
    raise InputError(table.path, row, column, f"'{values.loc[row]}' is not a date and time",
                     "use the export's original date format (e.g. 15.09.2025 10:49:28)")


def _map_items(table: RawTable, columns: dict[str, str], codebook: Codebook,
               problems: dict[str, list[InputError]]) -> pd.DataFrame:
    """Raw answers as scale values (not yet reverse-keyed). Cells that do not map are collected
    under problems["out_of_range"] (numbers off the scale) or problems["unknown_labels"]."""
    result = {}
    items = {item.id: item for item in codebook.items}
    missing_codes = codebook.missing_codes
    for item_id, column in columns.items():
        item = items[item_id]
        lookup = codebook.label_lookup(item.scale)
        low, high = codebook.scale_points(item.scale)
        folded = table.frame[column].map(fold)
        values = folded.map(lookup)
        unmapped = values.isna() & ~folded.isin(missing_codes)
        for row in folded.index[unmapped]:
            raw = table.frame.loc[row, column]
            number = pd.to_numeric(folded.loc[row].replace(",", "."), errors="coerce")
            if pd.notna(number):
                kind, problem = "out_of_range", f"value {raw!r} is outside the scale {low}..{high}"
                fix = "correct the value, or set cleaning.out_of_range: missing to treat it as missing"
            else:
                kind, problem = "unknown_labels", f"label {raw!r} is not a label of scale '{item.scale}'"
                fix = (f"add it as a variant of the right value under scales.{item.scale} in the "
                       "codebook, or correct the cell")
            problems[kind].append(InputError(table.path, int(row), column, problem, fix))
        result[item_id] = values.astype(float)
    return pd.DataFrame(result, index=table.frame.index)


def _map_labels(table: RawTable, field: str, codebook: Codebook,
                problems: list[InputError], column: str) -> pd.Series:
    lookup = codebook.field_lookup(field)
    folded = table.frame[column].map(fold)
    values = folded.map(lookup)
    unmapped = values.isna() & ~folded.isin(codebook.missing_codes)
    known = ", ".join(spec["ru"] for spec in codebook.fields[field]["labels"].values())
    for row in folded.index[unmapped]:
        problems.append(InputError(table.path, int(row), column,
                                   f"{table.frame.loc[row, column]!r} is not a known {field}",
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
                                   f"institution {raw!r} is not in the registry"
                                   + (f" (did you mean {close[0]!r}?)" if close else ""),
                                   "add it to the institutions registry or correct the cell"))
    return ids


# --------------------------------------------------------------------------- one wave


def read_wave(wave: str, source: dict, codebook: Codebook, registry: pd.DataFrame,
              problems: list[InputError], value_problems: dict[str, list[InputError]]
              ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per submission: context, identity (for matching only) and item answers.

    Problems of structure and context go to ``problems``; answers that are not on their scale
    go to ``value_problems`` by kind, which the cleaning policies may turn to missing."""
    frames, item_order, retro_order = [], [], []
    for file in source["files"]:
        table = read_export(file, source.get("sheet"))
        columns = map_columns(table, codebook, REQUIRED_FIELDS)
        if not columns.items:
            raise InputError(table.path, 1, None, "no item of the codebook was recognised in the "
                             "headers", "check that the file is a competency questionnaire and "
                             "that the item texts in the codebook match the form")
        frame = pd.DataFrame(index=table.frame.index)
        frame["source"] = table.name
        frame["row"] = table.frame.index.astype(int)
        frame["wave"] = wave
        frame["timestamp"] = _parse_times(table, columns.fields["timestamp"])
        frame["started"] = (_parse_times(table, columns.fields["started"])
                            if "started" in columns.fields else pd.NaT)
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
        if "years_in_management" in columns.fields:
            years = table.frame[columns.fields["years_in_management"]].str.replace(",", ".")
            frame["years_in_management"] = pd.to_numeric(years, errors="coerce")
        else:
            frame["years_in_management"] = np.nan
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
    return pd.concat(frames, ignore_index=True), item_order, retro_order


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


def _participant_context(kept: pd.DataFrame) -> pd.DataFrame:
    """Cohort, role and experience per participant: the earliest wave that reports them."""
    ordered = kept.assign(order=kept["wave"].map(WAVE_ORDER)).sort_values(["participant_key", "order"])
    return ordered.groupby("participant_key")[["cohort", "role", "years_in_management"]].first()


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
    problems: list[InputError] = []
    value_problems: dict[str, list[InputError]] = {"out_of_range": [], "unknown_labels": []}
    frames, items_by_wave = [], {}
    for wave in WAVES:
        if wave not in config["waves"]:
            continue
        frame, items, retro = read_wave(wave, config["waves"][wave], codebook, registry,
                                        problems, value_problems)
        frames.append(frame)
        items_by_wave[wave] = items + [f"then:{i}" for i in retro]
    set_missing = []
    for kind, found in value_problems.items():
        if config["cleaning"].get(kind, "error") == "error":
            problems += found
        else:
            set_missing += found
    if problems:
        raise InputErrors(problems)
    submissions = pd.concat(frames, ignore_index=True)
    item_columns = [c for c in submissions.columns if c in {i.id for i in codebook.items}
                    or c.startswith("then:")]
    audit = _apply_near_misses(submissions, config["cleaning"]["near_miss_matching"])
    submissions["participant_key"] = [participant_key(secret, inst, code) for inst, code
                                      in zip(submissions["institution"], submissions["code"])]
    submissions = _resolve_duplicates(submissions, item_columns)
    kept = submissions[submissions["kept"]].copy()
    context = _participant_context(kept)
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
                             "problem": p.problem} for p in set_missing],
                           columns=["file", "row", "column", "problem"])
    flow = _flow(submissions, respondents, config["cleaning"]["careless"]["policy"])
    audit = audit.copy()
    for column in ("typed_code", "matched_code"):
        # Codes identify people at their institution: the audit keeps their keys, not the codes.
        audit[column] = [("|".join(participant_key(secret, inst, c) for c in code.split("|")))
                         for inst, code in zip(audit["institution"], audit[column])]
    audit = audit.rename(columns={"typed_code": "typed_key", "matched_code": "matched_key"})
    result = IngestResult(responses, respondents.sort_values(["participant_key", "wave"])
                          .reset_index(drop=True), flow, audit, duplicates, invalid,
                          pd.DataFrame(), pd.DataFrame())
    return result, set_missing


def ingest_needs(source: dict, codebook: Codebook, registry: pd.DataFrame,
                 secret: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Instrument B: importance of need areas and preferred formats per respondent."""
    problems: list[InputError] = []
    frames, format_frames = [], []
    areas = {a["id"]: fold(a["ru"]) for a in codebook.need_areas}
    lookup = codebook.label_lookup("importance5")
    for file in source["files"]:
        table = read_export(file, source.get("sheet"))
        columns = map_columns(table, codebook, ("stakeholder", "institution"))
        keys = [respondent_key(secret, table.name, int(row)) for row in table.frame.index]
        base = pd.DataFrame({"respondent_key": keys}, index=table.frame.index)
        base["stakeholder"] = _map_labels(table, "stakeholder", codebook, problems,
                                          columns.fields["stakeholder"])
        base["institution"] = _institutions(table, columns.fields["institution"], registry, problems)
        area_columns = {}
        for column in table.frame.columns:
            folded = fold(column)
            area = next((aid for aid, text in areas.items() if text in folded), None)
            if area:
                area_columns[area] = column
        missing = sorted(set(areas) - set(area_columns))
        if missing:
            raise InputError(table.path, 1, None, f"no column for need area(s) {', '.join(missing)}",
                             "check the need_areas texts in the codebook against the form")
        for area, column in area_columns.items():
            folded = table.frame[column].map(fold)
            values = folded.map(lookup)
            for row in folded.index[values.isna() & ~folded.isin(codebook.missing_codes)]:
                problems.append(InputError(table.path, int(row), column,
                                           f"label {table.frame.loc[row, column]!r} is not a label "
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
    if problems:
        raise InputErrors(problems)
    place = registry.set_index("id")
    needs = pd.concat(frames, ignore_index=True)
    needs["municipality"] = needs["institution"].map(place["municipality"])
    needs = needs.dropna(subset=["value"]).astype({"value": int})
    formats = pd.concat(format_frames, ignore_index=True) if format_frames else pd.DataFrame(
        columns=["respondent_key", "stakeholder", "institution", "format", "chosen"])
    needs = needs.sort_values(["respondent_key", "area"]).reset_index(drop=True)
    formats = formats.sort_values(["respondent_key", "format"]).reset_index(drop=True)
    return needs[["respondent_key", "stakeholder", "institution", "municipality", "area", "value"]], formats

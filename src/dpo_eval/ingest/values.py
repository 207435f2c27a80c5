"""Values: answers, covariates, labels, timestamps and institutions of one export, as data."""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd

from dpo_eval.codebook import Codebook, parse_number
from dpo_eval.errors import InputError, shown
from dpo_eval.readers import RawTable
from dpo_eval.text import fold

TIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
                "%d.%m.%Y")

_INTEGRAL = re.compile(r"^([+-]?\d+)(?:[.,]0+)?$")


def _integral_text(folded: str) -> str:
    """An integral number written with decimals ("4,0", "4.0", Excel text cells) as "4"."""
    match = _INTEGRAL.match(folded)
    return str(int(match.group(1))) if match else folded


def parse_times(table: RawTable, column: str, problems: list[InputError]) -> pd.Series:
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


def map_items(table: RawTable, columns: dict[str, str], codebook: Codebook,
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


def numeric_field(table: RawTable, field: str, column: str, codebook: Codebook,
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


def map_labels(table: RawTable, field: str, codebook: Codebook,
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


def institutions(table: RawTable, column: str, registry: pd.DataFrame,
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

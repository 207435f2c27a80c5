"""Values: answers, covariates, labels, timestamps and institutions of one export, as data."""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd

from dpo_eval.core.codebook import Codebook, parse_number
from dpo_eval.core.errors import InputError, shown
from dpo_eval.core.readers import RawTable
from dpo_eval.core.text import fold

TIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
                "%d.%m.%Y")

_INTEGRAL = re.compile(r"^([+-]?\d+)(?:[.,]0+)?$")
# A file whose answers on one scale miss it this often (and in at least this many cells) was
# collected on another scale: one error for the wave, not a pile of cells set to missing.
SCALE_MISFIT_SHARE = 0.05
SCALE_MISFIT_MIN_CELLS = 10
MISFIT_KINDS = ("out_of_range", "unknown_labels")


def _integral_text(folded: str) -> str:
    """An integral number written with decimals ("4,0", "4.0", Excel text cells) as "4"."""
    match = _INTEGRAL.match(folded)
    return str(int(match.group(1))) if match else folded


def distinct_cells(column: pd.Series, transform) -> pd.Series:
    """``transform`` applied once per distinct cell text and spread back over the column: the
    cost grows with the rows only through a vectorised factorisation (answers repeat a handful
    of labels, codes and institution names)."""
    positions, uniques = pd.factorize(column, use_na_sentinel=False)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [transform(value) for value in uniques]
    return pd.Series(mapped[positions], index=column.index, dtype=object)


def folded(table: RawTable, column: str) -> pd.Series:
    return distinct_cells(table.frame[column], fold)


def parse_times(table: RawTable, column: str, problems: list[InputError]) -> pd.Series:
    """Timestamps in the one format that reads the most cells; every other cell is reported."""
    values = table.frame[column].str.strip()
    best = None
    for time_format in TIME_FORMATS:
        parsed = pd.to_datetime(values, format=time_format, errors="coerce")
        if best is None or parsed.notna().sum() > best.notna().sum():
            best = parsed
        if best.notna().all():  # no later format can read more cells
            break
    for row in values.index[best.isna()]:
        problems.append(InputError(table.path, int(row), column,
                                   f"{shown(values.loc[row])} is not a date and time in the format "
                                   "of the other rows",
                                   "use the export's original date format (e.g. 15.09.2025 10:49:28)"))
    return best


def _misfit(table: RawTable, column: str, rows: pd.Index, item, codebook: Codebook
            ) -> dict[str, list[InputError]]:
    """The cells of one item column that are not on its scale, by kind."""
    low, high = codebook.scale_points(item.scale)
    found: dict[str, list[InputError]] = {kind: [] for kind in MISFIT_KINDS}
    for row in rows:
        raw = table.frame.loc[row, column]
        number = parse_number(fold(raw))
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
        found[kind].append(InputError(table.path, int(row), column, problem, fix))
    return found


def _found_scale(counts: pd.Series, unmapped: pd.Series) -> str:
    """What a misfitting file's answers look like: the range of the numbers that make up at
    least 1% of its answers (a few typos such as 55 do not widen it), and its commonest labels
    that are not labels of the scale. ``counts``: answered cell text -> number of cells;
    ``unmapped``: the same for the cells not on the scale."""
    numbers = pd.Series({text: parse_number(fold(text)) for text in counts.index}, dtype=object)
    is_number = numbers.notna()
    common = counts[is_number & (counts >= 0.01 * counts.sum())]
    parts = []
    if len(common):
        values = numbers[common.index].astype(float)
        parts.append(f"numbers {values.min():g}..{values.max():g}")
    labels = unmapped[[parse_number(fold(text)) is None for text in unmapped.index]]
    labels = labels.sort_values(ascending=False, kind="stable")
    if len(labels):
        parts.append("labels " + ", ".join(shown(label) for label in labels.index[:4]))
    return " and ".join(parts)


def _scale_misfit_error(table: RawTable, wave: str | None, scale: str, codebook: Codebook,
                        answered: int, misfits: list[InputError], counts: pd.Series,
                        unmapped: pd.Series) -> InputError:
    low, high = codebook.scale_points(scale)
    labels = ", ".join(spec["ru"] for _, spec in sorted(codebook.scales[scale].items(),
                                                         key=lambda pair: int(pair[0])))
    columns = sorted({m.column for m in misfits})
    return InputError(
        table.path, None, None,
        f"wave {wave}: {len(misfits)} of {answered} answers on scale '{scale}' "
        f"({len(misfits) / answered:.0%}, in {len(columns)} column(s)) do not fit it; the file "
        f"uses {_found_scale(counts, unmapped)}, the codebook expects {low}..{high} ({labels}); the wave "
        "looks collected on another scale, so its answers are not set to missing cell by cell",
        f"recode this wave's answers to scale '{scale}' ({low}..{high}) before ingest, or "
        "correct the export; a wave on another scale cannot be compared with the other waves")


def map_items(table: RawTable, columns: dict[str, str], codebook: Codebook,
              problems: dict[str, list[InputError]], wave: str | None = None) -> pd.DataFrame:
    """Raw answers as scale values (not yet reverse-keyed). Cells that do not map are collected
    under problems["out_of_range"] (numbers that are not a point of the scale) or
    problems["unknown_labels"]; a file whose answers on a scale miss it in at least
    SCALE_MISFIT_SHARE of the answered cells gets one problems["scale_misfit"] instead."""
    result = {}
    items = {item.id: item for item in codebook.items}
    missing_codes = codebook.missing_codes
    by_scale: dict[str, dict] = {}
    for item_id, column in columns.items():
        item = items[item_id]
        lookup = codebook.label_lookup(item.scale)
        # One factorisation per column: every distinct cell text is folded and looked up once.
        positions, uniques = pd.factorize(table.frame[column], use_na_sentinel=False)
        counts = np.bincount(positions, minlength=len(uniques))
        texts = [fold(text) for text in uniques]
        missing = np.array([text in missing_codes for text in texts], dtype=bool)
        scale_values = np.array([lookup.get(_integral_text(text)) for text in texts], dtype=float)
        off_scale = np.isnan(scale_values) & ~missing
        shown_texts = pd.Index([str(text).strip() for text in uniques], dtype=object)
        tally = by_scale.setdefault(item.scale, {"answered": 0, "counts": [], "unmapped": [],
                                                 **{kind: [] for kind in MISFIT_KINDS}})
        tally["answered"] += int(counts[~missing].sum())
        tally["counts"].append(pd.Series(counts[~missing], index=shown_texts[~missing]))
        tally["unmapped"].append(pd.Series(counts[off_scale], index=shown_texts[off_scale]))
        rows = table.frame.index[off_scale[positions]] if off_scale.any() else table.frame.index[:0]
        for kind, found in _misfit(table, column, rows, item, codebook).items():
            tally[kind] += found
        result[item_id] = scale_values[positions] if len(uniques) else np.empty(0)
    for scale, tally in by_scale.items():
        misfits = tally["out_of_range"] + tally["unknown_labels"]
        if (len(misfits) >= SCALE_MISFIT_MIN_CELLS
                and len(misfits) >= SCALE_MISFIT_SHARE * tally["answered"]):
            problems.setdefault("scale_misfit", []).append(_scale_misfit_error(
                table, wave, scale, codebook, tally["answered"], misfits,
                *(pd.concat(tally[key]).groupby(level=0).sum() for key in ("counts", "unmapped"))))
            continue
        for kind in MISFIT_KINDS:
            problems[kind] += tally[kind]
    return pd.DataFrame(result, index=table.frame.index)


def _covariate_problem(raw: str, field: str, spec: dict, units: list[str],
                       low: float, high: float) -> tuple[float, str | None]:
    """The number a covariate cell states, or NaN and what is wrong with it."""
    number = parse_number(raw, units)
    if number is None:
        return np.nan, f"{shown(raw)} is not a number" + (
            f" (optionally followed by {', '.join(units)})" if units else "")
    if spec.get("type") == "integer" and not number.is_integer():
        return np.nan, f"{shown(raw)} is not a whole number"
    if not low <= number <= high:
        return np.nan, f"{shown(raw)} is outside the range {low:g}..{high:g} of fields.{field}"
    return number, None


def numeric_field(table: RawTable, field: str, column: str, codebook: Codebook,
                  problems: list[InputError]) -> pd.Series:
    """A numeric covariate checked against its codebook entry: `type` (number or integer),
    `range` and the `units` words allowed after the number; every other cell is reported."""
    spec = codebook.fields[field]
    units = spec.get("units", [])
    low, high = spec.get("range", (-np.inf, np.inf))
    raw = table.frame[column]
    missing = folded(table, column).isin(codebook.missing_codes)
    checked = distinct_cells(raw[~missing], lambda text: _covariate_problem(
        text, field, spec, units, low, high))
    values = pd.Series(np.nan, index=table.frame.index)
    values.loc[checked.index] = [number for number, _ in checked]
    for row, (_, problem) in checked.items():
        if problem is not None:
            problems.append(InputError(table.path, int(row), column, problem,
                                       "write the number in digits (e.g. 5), or leave it empty; "
                                       "or set cleaning.invalid_covariates: missing"))
    return values


def map_labels(table: RawTable, field: str, codebook: Codebook,
                problems: list[InputError], column: str) -> pd.Series:
    lookup = codebook.field_lookup(field)
    texts = folded(table, column)
    values = texts.map(lookup)
    unmapped = values.isna() & ~texts.isin(codebook.missing_codes)
    known = ", ".join(spec["ru"] for spec in codebook.fields[field]["labels"].values())
    for row in texts.index[unmapped]:
        problems.append(InputError(table.path, int(row), column,
                                   f"{shown(table.frame.loc[row, column])} is not a known {field}",
                                   f"use one of: {known}; or add a variant in the codebook"))
    return values


def institutions(table: RawTable, column: str, registry: pd.DataFrame,
                  problems: list[InputError]) -> pd.Series:
    lookup = {fold(name): iid for iid, name in zip(registry["id"], registry["name"])}
    lookup.update({fold(iid): iid for iid in registry["id"]})
    texts = folded(table, column)
    ids = texts.map(lookup)
    for row in texts.index[ids.isna()]:
        raw = table.frame.loc[row, column]
        close = difflib.get_close_matches(raw, list(registry["name"]), n=1, cutoff=0.6)
        problems.append(InputError(table.path, int(row), column,
                                   f"institution {shown(raw)} is not in the registry"
                                   + (f" (did you mean {close[0]!r}?)" if close else ""),
                                   "add it to the institutions registry or correct the cell"))
    return ids

"""Instrument B: the needs-assessment export -> importance ratings and preferred formats."""

from __future__ import annotations

import logging

import pandas as pd

from dpo_eval.core.codebook import Codebook
from dpo_eval.core.errors import InputError, raise_all, shown
from dpo_eval.ingest.columns import closest_header, closest_text, map_columns
from dpo_eval.ingest.values import institutions, map_labels
from dpo_eval.ingest.pseudonymise import respondent_key
from dpo_eval.core.readers import read_export
from dpo_eval.core.text import fold

log = logging.getLogger(__name__)


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
                f"({closest_text(closest)})",
                "make the header contain the area text exactly as in the codebook's need_areas"))
        if column_problems:
            problems += column_problems
            continue
        keys = [respondent_key(secret, table.name, int(row)) for row in table.frame.index]
        base = pd.DataFrame({"respondent_key": keys}, index=table.frame.index)
        base["stakeholder"] = map_labels(table, "stakeholder", codebook, problems,
                                          columns.fields["stakeholder"])
        base["institution"] = institutions(table, columns.fields["institution"], registry, problems)
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

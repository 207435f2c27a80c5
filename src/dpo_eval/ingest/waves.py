"""One competency wave: its exports read into one row per submission."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from dpo_eval.core.codebook import REQUIRED_WAVE_FIELDS, Codebook
from dpo_eval.ingest.codes import normalise_code, undo_excel_text
from dpo_eval.core.errors import InputError
from dpo_eval.ingest.columns import map_columns
from dpo_eval.ingest.identities import IDENTITY_FIELDS
from dpo_eval.ingest.values import (distinct_cells, folded, institutions, map_items, map_labels,
                                    numeric_field, parse_times)
from dpo_eval.core.readers import read_export

log = logging.getLogger(__name__)

REQUIRED_FIELDS = REQUIRED_WAVE_FIELDS


def read_wave(wave: str, source: dict, codebook: Codebook, registry: pd.DataFrame,
              problems: list[InputError], value_problems: dict[str, list[InputError]],
              unknown_columns: str = "error") -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per submission: context, identity (folded name and e-mail, for matching
    only) and item answers.

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
        frame["timestamp"] = parse_times(table, columns.fields["timestamp"], problems)
        frame["started"] = (parse_times(table, columns.fields["started"], problems)
                            if "started" in columns.fields else pd.NaT)
        frame["code_column"] = columns.fields["participant_code"]
        codes = table.frame[columns.fields["participant_code"]]
        frame["code_fix"] = distinct_cells(codes, lambda text: undo_excel_text(text)[1])
        frame["code"] = distinct_cells(codes, lambda text: normalise_code(undo_excel_text(text)[0]))
        blank = frame["code"] == ""
        for row in frame.index[blank]:
            problems.append(InputError(table.path, int(row), columns.fields["participant_code"],
                                       "participant code is empty",
                                       "fill in the code the participant was given"))
        frame["institution"] = institutions(table, columns.fields["institution"], registry, problems)
        for field in ("role", "cohort"):
            frame[field] = (map_labels(table, field, codebook, problems, columns.fields[field])
                            if field in columns.fields else np.nan)
        frame["cohort_column"] = columns.fields.get("cohort")
        frame["years_in_management"] = (
            numeric_field(table, "years_in_management", columns.fields["years_in_management"],
                           codebook, value_problems["invalid_covariates"])
            if "years_in_management" in columns.fields else np.nan)
        for field in IDENTITY_FIELDS:
            frame[field] = (folded(table, columns.fields[field]) if field in columns.fields
                            else "")
        answers = map_items(table, columns.items, codebook, value_problems, wave)
        retro = map_items(table, columns.retrospective, codebook, value_problems,
                          wave).add_prefix("then:")
        frames.append(pd.concat([frame, answers, retro], axis=1))
        item_order = item_order or list(columns.items)
        retro_order = retro_order or list(columns.retrospective)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame, item_order, retro_order

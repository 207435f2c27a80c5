"""Assembly: every wave's submissions -> the pseudonymised ingest tables with their audit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dpo_eval.ingest import careless
from dpo_eval.core.codebook import Codebook
from dpo_eval.core.errors import InputError, raise_all
from dpo_eval.ingest.identities import (apply_near_misses, resolve_code_collisions, resolve_cohorts,
                                        resolve_duplicates, restore_codes)
from dpo_eval.ingest.waves import read_wave
from dpo_eval.ingest.pseudonymise import participant_key
from dpo_eval.core.study import WAVE_ORDER, WAVES

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    responses: pd.DataFrame      # long, tidy, pseudonymised
    respondents: pd.DataFrame    # one row per participant and wave, with careless flags
    flow: pd.DataFrame
    match_audit: pd.DataFrame
    duplicates: pd.DataFrame
    invalid_values: pd.DataFrame  # answers set to missing by the cleaning policies


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
    """Cohort (resolved by ``resolve_cohorts``), role and experience per participant: role and
    experience from the earliest wave that reports them (experience grows between waves)."""
    ordered = kept[["participant_key", "role", "years_in_management"]].assign(
        order=kept["wave"].map(WAVE_ORDER)).sort_values(["participant_key", "order"])
    context = ordered.groupby("participant_key")[["role", "years_in_management"]].first()
    context.insert(0, "cohort", cohorts.reindex(context.index))
    return context


UNKNOWN_COHORT = "unknown"


def _flow(submissions: pd.DataFrame, respondents: pd.DataFrame, policy: str,
          set_missing: pd.DataFrame) -> pd.DataFrame:
    """Per wave and cohort: questionnaires received, duplicates, participants, those seen in
    this wave only, careless, excluded and analysed, and the answers set to missing by the
    cleaning policies. Submissions of participants excluded for want of a cohort form a row of
    their own (cohort "unknown": all excluded)."""
    waves_per_participant = respondents.groupby("participant_key")["wave"].nunique()
    missing = set_missing.groupby(["wave", "cohort"]).size()
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
            "analysed": len(group) - excluded, "set_missing": int(missing.get((wave, cohort), 0)),
            "reasons": (f"duplicates: latest complete submission kept; unmatched: seen in this "
                        f"wave only; careless: {policy}"),
        })
    without = submissions[submissions["cohort_final"].isna()]
    for wave, received in without.groupby("wave", sort=False):
        people = received.loc[received["kept"], "participant_key"].nunique()
        rows.append({
            "wave": wave, "cohort": UNKNOWN_COHORT, "received": len(received),
            "duplicates": int((~received["kept"]).sum()), "participants": people,
            "unmatched": people, "careless": 0, "excluded": people, "analysed": 0,
            "set_missing": int(missing.get((wave, UNKNOWN_COHORT), 0)),
            "reasons": "no wave gives a cohort for these participants (their code matches no "
                       "participant of a wave that asks the cohort): excluded "
                       "(cleaning.without_cohort: exclude)"})
    flow = pd.DataFrame(rows)
    flow["wave_order"] = flow["wave"].map(WAVE_ORDER)
    return flow.sort_values(["wave_order", "cohort"]).drop(columns="wave_order").reset_index(drop=True)


def _read_waves(config: dict, codebook: Codebook, registry: pd.DataFrame
                ) -> tuple[pd.DataFrame, dict, dict, list[InputError]]:
    """Every wave's exports as submissions; raises every problem the cleaning policies do
    not turn to missing, and returns the cells they do."""
    cleaning = config["cleaning"]
    problems: list[InputError] = []
    # A wave on another scale first: it explains the out-of-range cells of that file.
    value_problems: dict[str, list[InputError]] = {"scale_misfit": [], "out_of_range": [],
                                                   "unknown_labels": [], "invalid_covariates": []}
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
        if kind == "scale_misfit" or cleaning.get(kind, "error") == "error":
            problems += found
        else:
            set_missing += found
    raise_all(problems)
    return pd.concat(frames, ignore_index=True), items_by_wave, tables, set_missing


def _keys(secret: bytes, institutions: pd.Series, codes: pd.Series) -> pd.Series:
    """The participant key of every (institution, code), computed once per distinct pair."""
    pairs = pd.MultiIndex.from_arrays([institutions, codes])
    positions, distinct = pd.factorize(pairs)
    keys = np.array([participant_key(secret, inst, code) for inst, code in distinct], dtype=object)
    return pd.Series(keys[positions], index=institutions.index)


def _identify(submissions: pd.DataFrame, cleaning: dict, codebook: Codebook,
              tables: dict[str, Path], secret: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Codes restored, near misses matched, collisions resolved, keys computed and one
    submission kept per participant and wave (in place); returns the match audit and the
    cleaning decisions on codes."""
    problems: list[InputError] = []
    decisions = restore_codes(submissions, codebook.code_format, tables, problems)
    raise_all(problems)
    audit = apply_near_misses(submissions, cleaning["near_miss_matching"])
    kept_apart = resolve_code_collisions(submissions, cleaning.get("code_collisions", "error"),
                                         tables, problems)
    raise_all(problems)
    audit = pd.concat([audit, pd.DataFrame(kept_apart, columns=audit.columns)], ignore_index=True)
    submissions["participant_key"] = _keys(secret, submissions["institution"], submissions["code"])
    return audit, decisions


def _labels(values: np.ndarray) -> tuple[np.ndarray, pd.Index]:
    """Codes and sorted categories of a column of labels (missing: code -1)."""
    codes, categories = pd.factorize(values, sort=True)
    return codes, categories


def _answer_parts(kept: pd.DataFrame, item_columns: list[str], item_codes: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The answers as "part rows": each submission's own items (rows 0..n-1), then its
    retrospective items (rows n..2n-1, wave "then"), each part's columns ordered by item; a
    small integer per cell (-1: not answered). Returns the parts and, per part and slot, the
    column of ``item_columns`` it holds (-1: none)."""
    rows = len(kept)
    is_then = np.array([c.startswith("then:") for c in item_columns], dtype=bool)
    own, then = (np.flatnonzero(mask) for mask in (~is_then, is_then))
    own, then = (part[np.argsort(item_codes[part], kind="stable")] for part in (own, then))
    width = max(len(own), len(then))
    parts = np.full((2 * rows, width), -1, dtype=np.int16)
    slots = np.full((2, width), -1, dtype=np.int64)
    for index, part in enumerate((own, then)):
        slots[index, :len(part)] = part
        for slot, column in enumerate(part):
            values = kept[item_columns[column]].to_numpy(dtype=float)
            answered = ~np.isnan(values)
            parts[index * rows:(index + 1) * rows, slot][answered] = values[answered].astype(int)
    return parts, slots


def _answered_cells(parts: np.ndarray, block: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Row and slot of every answered cell in row-major order, as 32-bit and 16-bit integers
    found block by block (np.nonzero's 64-bit indices of every answer would double the
    memory peak of the long table)."""
    rows, slots = [np.empty(0, dtype=np.int32)], [np.empty(0, dtype=np.int16)]
    for start in range(0, len(parts), block):
        row, slot = np.nonzero(parts[start:start + block] >= 0)
        rows.append((row + start).astype(np.int32))
        slots.append(slot.astype(np.int16))
    return np.concatenate(rows), np.concatenate(slots)


def _long_responses(kept: pd.DataFrame, context_columns: list[str], item_columns: list[str],
                    codebook: Codebook) -> pd.DataFrame:
    """One row per answer: raw and reverse-keyed value with the participant's context, ordered
    by participant, wave and item. The part rows (``_answer_parts``) are sorted by participant
    and wave, so that the answered cells in row-major order are the long table's rows; the
    repeated labels (keys, institutions, waves, items...) are categoricals: memory grows by a
    few bytes an answer (the CSV written is the same text)."""
    items = {item.id: item for item in codebook.items}
    column_items = [items[c.removeprefix("then:")] for c in item_columns]
    item_codes, item_names = _labels(np.array([item.id for item in column_items], dtype=object))
    parts, slots = _answer_parts(kept, item_columns, item_codes)
    wave_codes, wave_names = _labels(np.append(kept["wave"].to_numpy(dtype=object), "then"))
    wave_codes = wave_codes.astype(np.int8)
    part_waves = np.append(wave_codes[:-1], np.full(len(kept), wave_codes[-1], dtype=np.int8))
    key_codes, keys = _labels(kept["participant_key"].to_numpy(dtype=object))
    part_keys = np.tile(key_codes, 2)
    wave_rank = pd.Series(wave_names).map(WAVE_ORDER).to_numpy()
    order = np.lexsort((wave_rank[part_waves], part_keys))
    part_rows, slot = _answered_cells(parts[order])
    part_rows = order.astype(np.int32)[part_rows]
    raw = parts[part_rows, slot].astype(int)
    columns = slots.astype(np.int16)[part_rows // len(kept), slot]
    waves = part_waves[part_rows]
    rows = part_rows % np.int32(len(kept))
    del part_rows, slot
    # Retrospective items asked in more than one wave give a participant several "then" part
    # rows: their cells are interleaved by item, as one (participant, wave) group.
    answered = (parts >= 0).any(axis=1)
    if pd.MultiIndex.from_arrays([part_keys[answered], part_waves[answered]]).has_duplicates:
        groups = pd.factorize(pd.MultiIndex.from_arrays([key_codes[rows], waves]))[0]
        interleave = np.lexsort((item_codes[columns], groups))
        rows, columns, waves, raw = rows[interleave], columns[interleave], waves[interleave], raw[interleave]
    points = np.array([codebook.scale_points(item.scale) for item in column_items]).reshape(-1, 2)
    reverse = np.array([item.reverse for item in column_items], dtype=bool)
    # Reverse-keyed: low + high - raw.
    value = raw.copy()
    flip = reverse[columns]
    value[flip] = points.sum(axis=1)[columns[flip]] - raw[flip]
    del flip
    long = {}
    for column in context_columns:
        if column == "wave":
            long["wave"] = pd.Categorical.from_codes(waves, wave_names)
        elif kept[column].dtype == object:
            codes, categories = _labels(kept[column].to_numpy(dtype=object))
            long[column] = pd.Categorical.from_codes(codes[rows], categories)
        else:
            long[column] = kept[column].to_numpy()[rows]
    domain_codes, domains = _labels(np.array([item.domain for item in column_items], dtype=object))
    long["domain"] = pd.Categorical.from_codes(domain_codes[columns], domains)
    long["item"] = pd.Categorical.from_codes(item_codes[columns], item_names)
    long["raw_value"] = raw
    long["value"] = value
    long["careless"] = kept["careless"].to_numpy()[rows]
    # Not consolidated into 2-D blocks nor reordered by a selection: either would copy the
    # whole table once more at the memory peak.
    return pd.DataFrame(long, columns=["participant_key", "institution", "municipality",
                                       "settlement", "cohort", "role", "years_in_management",
                                       "wave", "domain", "item", "raw_value", "value", "careless"],
                        copy=False)


def _set_missing_table(set_missing: list[InputError], submissions: pd.DataFrame) -> pd.DataFrame:
    """The cells set to missing with the wave and final cohort of their submission."""
    cells = pd.DataFrame([{"source": Path(p.path).name, "row": p.row, "column": p.column,
                           "problem": p.problem} for p in set_missing],
                         columns=["source", "row", "column", "problem"])
    place = submissions[["source", "row", "wave", "cohort_final"]]
    cells = cells.merge(place, on=["source", "row"], how="left")
    return cells.assign(cohort=cells["cohort_final"].fillna(UNKNOWN_COHORT))


def _hashed_audit(audit: pd.DataFrame, secret: bytes) -> pd.DataFrame:
    """Codes identify people at their institution: the audit keeps their keys, not the codes."""
    audit = audit.copy()
    for column in ("typed_code", "matched_code"):
        audit[column] = [("|".join(participant_key(secret, inst, c) for c in code.split("|")))
                         for inst, code in zip(audit["institution"], audit[column])]
    return audit.rename(columns={"typed_code": "typed_key", "matched_code": "matched_key"})


def ingest_competencies(config: dict, codebook: Codebook, registry: pd.DataFrame,
                        secret: bytes) -> tuple[IngestResult, list[InputError]]:
    """Every wave's competency exports -> the ingest tables; every problem in the input is
    collected and raised at once (InputErrors), cells the cleaning policies set to missing or
    overrule are returned and listed in ``invalid_values``."""
    cleaning = config["cleaning"]
    submissions, items_by_wave, tables, set_missing = _read_waves(config, codebook, registry)
    item_columns = [c for c in submissions.columns if c in {i.id for i in codebook.items}
                    or c.startswith("then:")]
    audit, code_decisions = _identify(submissions, cleaning, codebook, tables, secret)
    submissions = resolve_duplicates(submissions, item_columns)
    kept = submissions[submissions["kept"]].copy()
    # The answers are in ``kept`` now: the other submissions are audited without them.
    submissions = submissions.drop(columns=item_columns)
    problems: list[InputError] = []
    cohorts, decisions, excluded = resolve_cohorts(
        kept, cleaning.get("cohort_conflicts", "error"), tables, problems,
        cleaning.get("without_cohort", "exclude"))
    raise_all(problems)
    kept = kept[~kept["participant_key"].isin(excluded)]
    context = _participant_context(kept, cohorts)
    for column in context.columns:
        kept[column] = kept["participant_key"].map(context[column])
    submissions["cohort_final"] = submissions["participant_key"].map(context["cohort"])
    flags = _careless_flags(kept, items_by_wave, cleaning["careless"], codebook)
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
    responses = _long_responses(kept, context_columns, item_columns, codebook)

    duplicates = submissions.loc[~submissions["kept"], ["source", "row", "wave", "participant_key",
                                                        "timestamp", "complete"]]
    duplicates = duplicates.assign(rule="a later or more complete submission of the same "
                                   "participant in this wave was kept").reset_index(drop=True)
    missing_cells = _set_missing_table(set_missing, submissions)
    audit_columns = ["file", "row", "column", "problem"]
    invalid = pd.concat([missing_cells.rename(columns={"source": "file"})[audit_columns],
                         code_decisions, pd.DataFrame(decisions, columns=audit_columns)],
                        ignore_index=True)
    flow = _flow(submissions, respondents, cleaning["careless"]["policy"], missing_cells)
    for decision in decisions:
        log.warning("cleaning decision: %(file)s, row %(row)s, column '%(column)s': %(problem)s",
                    decision)
    if len(code_decisions):
        log.warning("cleaning decision: %d participant code cell(s) restored from what a "
                    "spreadsheet did to them (listed in invalid_values)", len(code_decisions))
    result = IngestResult(responses, respondents.sort_values(["participant_key", "wave"])
                          .reset_index(drop=True), flow, _hashed_audit(audit, secret), duplicates,
                          invalid)
    return result, set_missing

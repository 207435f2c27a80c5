"""Identities and matching: near-miss codes, codes shared by different people, one cohort
per participant, and one kept submission per participant and wave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dpo_eval.ingest.codes import EXCEL_FIXES, fits_format, resolve_near_misses, restore_leading_zeros
from dpo_eval.core.errors import InputError
from dpo_eval.core.study import WAVE_ORDER

# The personal data a submission gives besides its code, folded; read to tell people apart.
IDENTITY_FIELDS = ("full_name", "email")


def apply_near_misses(submissions: pd.DataFrame, enabled: bool) -> pd.DataFrame:
    """Near-miss codes (``dpo_eval.ingest.codes.resolve_near_misses``) replaced by the code they were
    matched to, in place; returns the match audit (empty when matching is disabled)."""
    distinct = submissions[["institution", "wave", "code", *IDENTITY_FIELDS]].drop_duplicates()
    audit = resolve_near_misses(distinct)
    if not enabled:
        audit = audit.iloc[0:0]
    matched = audit[audit["status"] == "matched"]
    mapping = matched.set_index(["institution", "typed_code"])["matched_code"]
    keys = pd.MultiIndex.from_frame(submissions[["institution", "code"]])
    replaced = mapping.reindex(keys).to_numpy()
    submissions["code"] = np.where(pd.isna(replaced), submissions["code"].to_numpy(), replaced)
    return audit


def restore_codes(submissions: pd.DataFrame, code_format: dict | None, tables: dict[str, Path],
                  problems: list[InputError]) -> pd.DataFrame:
    """Participant codes as issued, from what a spreadsheet did to them (in place): the text
    marker and decimals were removed when the cells were read (``code_fix``), the leading zeros
    are put back here (``dpo_eval.ingest.codes.restore_leading_zeros``). Returns an audit row (file,
    row, column, problem) per restored cell, without the code; a code that does not fit the declared format even so is a
    problem naming its cell."""
    restored = restore_leading_zeros(submissions, code_format)
    zeros = restored.notna()
    submissions.loc[zeros, "code"] = restored[zeros]
    fixes = submissions["code_fix"].where(~zeros, (submissions["code_fix"] + "+zeros").str.strip("+"))
    pattern = (code_format or {}).get("pattern")
    misfit = ~fits_format(submissions["code"], pattern) & (submissions["code"] != "")
    for row in submissions[misfit].itertuples():
        problems.append(InputError(
            tables[row.source], int(row.row), row.code_column,
            f"participant code {row.code!r} does not fit the code format of the codebook "
            f"(fields.participant_code.format: pattern {pattern!r})",
            "correct the code to the one the participant was issued, or correct the format in "
            "the codebook"))
    changed = fixes != ""
    messages = {fix: "participant code restored: " + "; ".join(EXCEL_FIXES[k] for k in fix.split("+"))
                for fix in fixes[changed].unique()}
    return pd.DataFrame({"file": submissions.loc[changed, "source"],
                         "row": submissions.loc[changed, "row"].astype(int),
                         "column": submissions.loc[changed, "code_column"],
                         "problem": fixes[changed].map(messages)}).reset_index(drop=True)


def _identity(row) -> frozenset:
    return frozenset((kind, getattr(row, kind)) for kind in IDENTITY_FIELDS if getattr(row, kind))


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
    for index, ids in zip(ordered.index, map(_identity, ordered.itertuples())):
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


def resolve_code_collisions(submissions: pd.DataFrame, policy: str, tables: dict[str, Path],
                             problems: list[InputError]) -> list[dict]:
    """The same code given by different people (their names or e-mails differ) is a code
    collision, never a duplicate. ``policy`` "error" reports every collision with its rows;
    "separate" keeps the people apart (a suffix to the code of every later person) and returns
    an audit row per person kept apart."""
    audit = []
    # Only a code given with two different names (or e-mails) can hide two people.
    suspect = pd.Series(False, index=submissions.index)
    for kind in IDENTITY_FIELDS:
        given = submissions[submissions[kind] != ""]
        varying = given.groupby(["institution", "code"])[kind].transform("nunique") > 1
        suspect |= varying.reindex(submissions.index, fill_value=False)
    suspects = pd.MultiIndex.from_frame(submissions.loc[suspect, ["institution", "code"]])
    candidates = submissions[pd.MultiIndex.from_frame(
        submissions[["institution", "code"]]).isin(suspects)]
    for (institution, code), group in candidates.groupby(["institution", "code"], sort=True):
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


def _without_cohort(kept: pd.DataFrame, group: pd.DataFrame, policy: str,
                    tables: dict[str, Path]) -> InputError | list[dict]:
    """A participant no wave gives a cohort for (typically a code typed in a wave whose form
    does not ask the cohort, matching nobody): an error (``policy`` "error") or an audit row per
    submission, the participant being excluded from the analyses (``policy`` "exclude")."""
    first = group.index[0]
    if policy == "error":
        return InputError(
            tables[kept.loc[first, "source"]], int(kept.loc[first, "row"]),
            kept.loc[first, "code_column"],
            f"no wave gives a cohort for participant {kept.loc[first, 'code']!r} of "
            f"{kept.loc[first, 'institution']} ({_where(kept, group.index)})",
            "add the cohort column to this wave's file (and list 'cohort' under its "
            "waves.<wave>.fields in the codebook), fill in the cohort, or correct the "
            "participant code to match the participant's other waves; or set "
            "cleaning.without_cohort: exclude to exclude such participants (audited)")
    return [{"file": row.source, "row": int(row.row), "column": row.code_column,
             "problem": "no wave gives a cohort for this participant (the code matches no "
                        "participant of a wave that asks the cohort); excluded from the "
                        "analyses (cleaning.without_cohort: exclude)"}
            for row in group.itertuples()]


def resolve_cohorts(kept: pd.DataFrame, policy: str, tables: dict[str, Path],
                    problems: list[InputError], without_cohort: str = "exclude"
                    ) -> tuple[pd.Series, list[dict], set[str]]:
    """One cohort per participant. Waves that disagree are an error listing the participant's
    rows (``policy`` "error"), or the first or last wave's cohort is used (``policy`` "first"
    or "last") with an audit row per overruled cell. A participant no wave gives a cohort for
    is handled by ``without_cohort`` (see ``_without_cohort``); returns the cohorts, the audit
    rows and the keys of the participants excluded for want of a cohort."""
    # Sorted with the columns read here only (a copy of the wide table costs its answers).
    narrow = kept[["participant_key", "wave", "timestamp", "row", "cohort", "source",
                   "cohort_column", "code_column"]]
    ordered = narrow.assign(_w=kept["wave"].map(WAVE_ORDER)).sort_values(
        ["participant_key", "_w", "timestamp", "row"])
    decisions, found, excluded = [], [], set()
    distinct = ordered.groupby("participant_key", sort=True)["cohort"].nunique()
    cohorts = ordered.dropna(subset=["cohort"]).groupby("participant_key")["cohort"].first()
    cohorts = cohorts[distinct.reindex(cohorts.index) == 1].to_dict()
    unsettled = set(distinct.index[distinct != 1])
    for key, group in ordered[ordered["participant_key"].isin(unsettled)].groupby(
            "participant_key", sort=True):
        given = group.dropna(subset=["cohort"])
        if given.empty:
            outcome = _without_cohort(kept, group, without_cohort, tables)
            if isinstance(outcome, InputError):
                found.append(outcome)
            else:
                decisions += outcome
                excluded.add(key)
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
    return pd.Series(cohorts, dtype=object), decisions, excluded


def resolve_duplicates(submissions: pd.DataFrame, item_columns: list[str]) -> pd.DataFrame:
    """Keep per participant and wave the latest complete submission (latest if none complete)."""
    submissions["complete"] = submissions[item_columns].notna().all(axis=1)
    keys = ["participant_key", "wave", "complete", "timestamp", "row"]
    ordered = submissions[keys].sort_values(keys)
    submissions["kept"] = ~ordered.duplicated(["participant_key", "wave"], keep="last").reindex(
        submissions.index)
    return submissions

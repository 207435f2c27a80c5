"""An attacker's audit of a run's release, written without the pipeline's disclosure code: it
reads results/reports/released_cells.csv and the analysis data (results/clean/scores.csv and
needs.csv, institutions.csv), rebuilds each released group as a set of participants, and lists every pair of
released groups, one inside the other (same domain and wave), whose difference holds 1 to
min_cell - 1 people: subtracting the two published numbers would describe those few people."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

WAVES = ("pre", "then", "post", "followup")


COLUMNS = ["participant_key", "institution", "cohort", "role", "settlement"]


def _score_people(scores: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Participants (key, institution, cohort, role, settlement) per (domain, wave), with "any"
    for either."""
    rows = scores.dropna(subset=["score"]).copy()
    rows["role"] = rows["role"].fillna("unknown")
    people: dict[tuple[str, str], pd.DataFrame] = {}
    columns = COLUMNS
    for (domain, wave), part in rows.groupby(["domain", "wave"]):
        people[(domain, wave)] = part[columns].drop_duplicates("participant_key")
    for wave, part in rows.groupby("wave"):
        people[("any", wave)] = part[columns].drop_duplicates("participant_key")
    for domain, part in rows.groupby("domain"):
        people[(domain, "any")] = part[columns].drop_duplicates("participant_key")
    people[("any", "any")] = rows[columns].drop_duplicates("participant_key")
    return people


def _needs_people(needs: pd.DataFrame, registry: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    rows = needs.dropna(subset=["value"]).rename(columns={"respondent_key": "participant_key",
                                                          "stakeholder": "role"}).assign(cohort="none")
    rows["settlement"] = rows["institution"].map(registry.set_index("id")["settlement"])
    columns = COLUMNS
    people = {(f"need:{area}", "needs"): part[columns].drop_duplicates("participant_key")
              for area, part in rows.groupby("area")}
    people[("need:any", "needs")] = rows[columns].drop_duplicates("participant_key")
    return people


def group_members(row, people: dict) -> frozenset | None:
    """The participants of one released row's group, or None when its domain and wave are not
    groups of the analysis data."""
    frame = people.get((row.domain, row.wave))
    if frame is None:
        return None
    keep = pd.Series(True, index=frame.index)
    if str(row.institutions).startswith("settlement:"):
        keep &= frame["settlement"] == str(row.institutions).split(":", 1)[1]
    elif row.institutions != "all":
        keep &= frame["institution"].isin(str(row.institutions).split(";"))
    if row.cohort != "all":
        keep &= frame["cohort"] == row.cohort
    if row.role != "all":
        keep &= frame["role"] == row.role
    return frozenset(frame.loc[keep, "participant_key"])


def audit(results: Path, min_cell: int) -> tuple[list[tuple], int]:
    """(pairs whose difference is 1..min_cell-1, number of distinct groups checked)."""
    cells = pd.read_csv(results / "reports" / "released_cells.csv", dtype={"institutions": str},
                        keep_default_na=False)
    registry = pd.read_csv(results / "clean" / "institutions.csv", dtype=str, keep_default_na=False)
    people = {**_score_people(pd.read_csv(results / "clean" / "scores.csv")),
              **_needs_people(pd.read_csv(results / "clean" / "needs.csv"), registry)}
    groups = cells[["domain", "wave", "institutions", "cohort", "role"]].drop_duplicates()
    by_place: dict[tuple[str, str], dict[frozenset, tuple]] = defaultdict(dict)
    for row in groups.itertuples(index=False):
        members = group_members(row, people)
        if members:
            by_place[(row.domain, row.wave)].setdefault(members, tuple(row))
    bad = []
    for place, sets in by_place.items():
        ordered = sorted(sets, key=len)
        for i, inner in enumerate(ordered):
            for outer in ordered[i + 1:]:
                if len(outer) > len(inner) and inner < outer and len(outer) - len(inner) < min_cell:
                    bad.append((sets[outer], sets[inner], len(outer) - len(inner)))
    return bad, sum(len(sets) for sets in by_place.values())

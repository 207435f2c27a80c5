"""Aggregates for the reports: the sample, municipalities, and institutions against their
cohort and the region. Disclosure control of everything the reports show is dpo_eval.release.manifest,
applied to the whole release before any report is rendered."""

from __future__ import annotations

import pandas as pd

from dpo_eval.core.study import WAVES


def sample_description(scores: pd.DataFrame) -> pd.DataFrame:
    """Participants per cohort by role and settlement, with years in management (mean, SD)."""
    people = (scores.sort_values("wave").drop_duplicates("participant_key")
              [["participant_key", "cohort", "role", "settlement", "years_in_management", "institution",
                "municipality"]])
    rows = []
    for cohort, group in people.groupby("cohort", sort=True):
        base = {"cohort": cohort}
        rows.append({**base, "characteristic": "participants", "level": "", "n": len(group)})
        rows.append({**base, "characteristic": "institutions", "level": "", "n": group["institution"].nunique()})
        rows.append({**base, "characteristic": "municipalities", "level": "", "n": group["municipality"].nunique()})
        for column in ("role", "settlement"):
            counts = group[column].fillna("unknown").value_counts()
            for level, n in sorted(counts.items()):
                rows.append({**base, "characteristic": column, "level": level, "n": int(n),
                             "share": n / len(group)})
        years = group["years_in_management"].dropna()
        rows.append({**base, "characteristic": "years_in_management", "level": "mean", "n": len(years),
                     "mean": years.mean(), "sd": years.std(ddof=1)})
    return pd.DataFrame(rows, columns=["cohort", "characteristic", "level", "n", "share", "mean", "sd"])


def municipality_participation(scores: pd.DataFrame) -> pd.DataFrame:
    """Participants per municipality and cohort (any wave)."""
    people = scores.drop_duplicates("participant_key")
    table = people.groupby(["municipality", "cohort"]).size().rename("n").reset_index()
    return table.sort_values(["municipality", "cohort"]).reset_index(drop=True)


def score_benchmarks(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean scores by domain and wave for each institution, each cohort and the region."""
    subset = scores[scores["wave"].isin(WAVES)]
    levels = [
        ("institution", subset.groupby(["institution", "cohort", "domain", "wave"])),
        ("cohort", subset.assign(institution="").groupby(["institution", "cohort", "domain", "wave"])),
        ("region", subset.assign(institution="", cohort="").groupby(["institution", "cohort", "domain", "wave"])),
    ]
    parts = []
    for level, grouped in levels:
        part = grouped["score"].agg(n="count", mean="mean", sd="std").reset_index()
        parts.append(part.assign(level=level))
    table = pd.concat(parts, ignore_index=True)
    table["wave_order"] = table["wave"].map({w: i for i, w in enumerate(WAVES)})
    return (table.sort_values(["level", "institution", "domain", "wave_order"]).drop(columns="wave_order")
            [["level", "institution", "cohort", "domain", "wave", "n", "mean", "sd"]].reset_index(drop=True))


def needs_benchmarks(needs: pd.DataFrame) -> pd.DataFrame:
    """Mean importance per area for each institution's respondents and for all school respondents."""
    schools = needs[needs["stakeholder"] == "school"]
    by_institution = schools.groupby(["institution", "area"])["value"].agg(n="count", mean="mean").reset_index()
    region = schools.groupby("area")["value"].agg(n="count", mean="mean").reset_index().assign(institution="")
    table = pd.concat([by_institution.assign(level="institution"), region.assign(level="region")],
                      ignore_index=True)
    return table[["level", "institution", "area", "n", "mean"]].sort_values(
        ["level", "institution", "area"]).reset_index(drop=True)

"""Disclosure control of the reports: which aggregates may be shown to whom.

Moved here unchanged from ``dpo_eval.aggregates`` and ``dpo_eval.report`` (issue 18) so that
every disclosure decision of the reports lives in one module:

- ``suppress``: primary and complementary suppression of a table of counts;
- ``sample_hidden`` and ``municipality_hidden``: that rule applied to the evaluation report's
  sample and municipality tables;
- ``pooled``, ``disclosable``, ``team_scores``, ``similar_schools_needs``: the level at which a
  school's report may show its team's scores and its needs.
"""

from __future__ import annotations

import pandas as pd

from dpo_eval.study import WAVES


def suppress(table: pd.DataFrame, count: str, min_cell: int, within: list[str] | None = None) -> pd.Series:
    """Cells to hide: every cell of fewer than ``min_cell`` respondents (primary suppression)
    and, where a group total is published (``within``), the next smallest cell of a group that
    has exactly one hidden cell, so that it cannot be recovered by subtraction (complementary
    suppression). Returns a boolean Series aligned with ``table``."""
    hidden = table[count] < min_cell
    if within:
        for _, group in table.groupby(within, sort=False):
            if hidden[group.index].sum() == 1 and len(group) > 1:
                candidates = group.loc[~hidden[group.index]].sort_values(count, kind="stable")
                hidden[candidates.index[0]] = True
    return hidden


# --------------------------------------------------------------------------- institution reports

# The levels an institution report may show its team's scores at, most specific first.
TEAM_LEVELS = ("team", "municipality_cohort", "municipality", "cohort")


def pooled(rows: pd.DataFrame) -> tuple[int, float]:
    """Respondents and mean of the union of groups given by their sizes and means
    (mean = sum n_g * mean_g / sum n_g, exact for means of disjoint groups)."""
    n = int(rows["n"].sum())
    return n, float((rows["n"] * rows["mean"]).sum() / n) if n else float("nan")


def disclosable(n_total: int, n_own: int, min_cell: int) -> bool:
    """An aggregate that includes the reader's own team may be shown when it holds at least
    ``min_cell`` respondents and, without the team, still at least ``min_cell``: so the team,
    which knows who of its members answered, cannot narrow down anyone else's answers."""
    return n_total >= min_cell and n_total - n_own >= min_cell


def team_scores(benchmarks: pd.DataFrame, registry: pd.DataFrame, institution: str, min_cell: int,
                domains: list[str], waves: tuple[str, ...] = ("pre", "post")) -> tuple[str, pd.DataFrame]:
    """The most specific level at which a school's results can be shown for every one of
    ``domains`` at ``waves``, and its mean scores by domain and wave at that level (all domains
    and waves, with a flag ``shown`` per row: other cells are shown where they qualify too).

    Levels: the team itself (every cell at least ``min_cell``); the schools of its municipality
    in its cohort; the schools of its municipality in both cohorts; its whole cohort. A pooled
    level is shown only where it is ``disclosable`` (see there), cell by cell.
    """
    schools = benchmarks[benchmarks["level"] == "institution"].merge(
        registry[["id", "municipality"]].rename(columns={"id": "institution"}), on="institution", how="left")
    own = schools[schools["institution"] == institution]
    cohort = own["cohort"].iloc[0] if not own.empty else None
    municipality = registry.set_index("id").loc[institution, "municipality"]
    members = {
        "team": schools["institution"] == institution,
        "municipality_cohort": (schools["municipality"] == municipality) & (schools["cohort"] == cohort),
        "municipality": schools["municipality"] == municipality,
        "cohort": schools["cohort"] == cohort,
    }
    cells = schools[["domain", "wave"]].drop_duplicates()
    cells = cells[cells["wave"].isin(WAVES)]
    levels = []
    for level in TEAM_LEVELS:
        if cohort is None and level != "municipality":
            continue
        rows = []
        for domain, wave in cells.itertuples(index=False):
            part = schools[members[level] & (schools["domain"] == domain) & (schools["wave"] == wave)]
            mine = own[(own["domain"] == domain) & (own["wave"] == wave)]
            n_own = int(mine["n"].sum())
            n, mean = pooled(part)
            shown = n >= min_cell if level == "team" else disclosable(n, n_own, min_cell)
            rows.append({"domain": domain, "wave": wave, "n": n, "mean": mean, "shown": shown})
        table = pd.DataFrame(rows, columns=["domain", "wave", "n", "mean", "shown"])
        levels.append((level, table))
        core = table[table["wave"].isin(waves) & table["domain"].isin(domains)]
        if len(core) and core["shown"].all():
            return level, table
    return "none", pd.DataFrame(columns=["domain", "wave", "n", "mean", "shown"])


def similar_schools_needs(needs_benchmarks: pd.DataFrame, registry: pd.DataFrame, institution: str,
                          min_cell: int) -> pd.DataFrame:
    """Mean importance per need area among the school respondents of schools of the same
    settlement type (urban or rural) as ``institution``, and the school's own means (``own``
    shown only with at least ``min_cell`` ratings)."""
    schools = needs_benchmarks[needs_benchmarks["level"] == "institution"].merge(
        registry[["id", "settlement"]].rename(columns={"id": "institution"}), on="institution", how="left")
    settlement = registry.set_index("id").loc[institution, "settlement"]
    rows = []
    for area, part in schools.groupby("area", sort=True):
        own = part[part["institution"] == institution]
        n_own = int(own["n"].sum())
        n, mean = pooled(part[part["settlement"] == settlement])
        rows.append({"area": area, "n_similar": n, "similar": mean,
                     "similar_shown": disclosable(n, n_own, min_cell),
                     "n_own": n_own, "own": float(own["mean"].iloc[0]) if n_own else float("nan"),
                     "own_shown": n_own >= min_cell})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- evaluation report


def sample_hidden(sample: pd.DataFrame, min_cell: int) -> pd.Series:
    """Cells of the sample table to hide: categories of role and settlement add up to the
    published cohort totals, so small cells are hidden and, where one alone would be hidden,
    its complement (``suppress`` within each cohort)."""
    hidden = pd.Series(False, index=sample.index)
    for characteristic in ("role", "settlement"):
        part = sample[sample["characteristic"] == characteristic]
        hidden[part.index] = suppress(part, "n", min_cell, within=["cohort"])
    return hidden


def municipality_hidden(municipalities: pd.DataFrame, min_cell: int) -> pd.Series:
    """Cells of the participants-by-municipality table to hide (``suppress`` within each
    cohort, whose total is published)."""
    return suppress(municipalities, "n", min_cell, within=["cohort"])

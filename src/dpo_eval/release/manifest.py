"""Disclosure control of the whole release: the manifest of every aggregate the pipeline
publishes (``results/reports/released_cells.csv``) and the rules that make it safe as a whole,
not only report by report.

Every released aggregate describes a *group* of participants: those with a score in ``domain``
(or in ``any`` domain) at ``wave`` (or ``any`` wave), of the ``institutions`` listed (or
``all``), of the ``cohort`` and the ``role`` given (or ``all``). A group is therefore a union of
*atoms*, the participants sharing (domain, wave, institution, cohort, role): group B lies inside
group A exactly when every non-empty atom of B is one of A's, whatever the labels say (the pool
of all programme schools of a municipality lies inside the programme cohort, although one is
labelled by institutions and the other by cohort). Atom counts come from the analysis data.

The attacker reads every released report (school reports are not secret from each other) and
knows who of their own team took part. The rules, checked on the whole release at once
(threshold rule and secondary suppression of linked tables: Hundepool et al. 2012, *Statistical
Disclosure Control*, Wiley, sections 5.2-5.4):

1. *threshold*: every released group has at least ``min_cell`` participants (rows flagged
   ``exempt``, a school's own team, which the school knows anyway, are not held to it);
2. *difference*: for every pair of released groups B inside A (same domain and wave), A minus B
   is empty or holds at least ``min_cell`` participants;
3. *remainder*: for every family of disjoint released groups (``partition``: the teams of the
   school reports, the cells of one table), A minus all shown members of the family inside it
   is empty or holds at least ``min_cell`` participants (a table's total less its shown cells),
   also after subtracting one more member known to a reader (a school's own team).

Where a rule fails, one group of the offending pair is suppressed everywhere (secondary
suppression): the one of lower ``priority`` (a pooled stand-in before a table of the evaluation
report, never an exempt group), on a tie the larger, which adds least information; a school
report that loses its level moves to the next one. ``control`` repeats this until the whole
release passes (suppression only grows, so it ends).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from dpo_eval.core.errors import UserError

# The columns of results/reports/released_cells.csv, in this order (see the data dictionary).
MANIFEST_COLUMNS = ("report", "item", "domain", "wave", "institutions", "cohort", "role", "n", "value")
# Columns a report builder adds for the control (not written to the manifest): the family of
# disjoint groups a row belongs to ("" for none), how much its report needs it, and whether it
# is exempt from the threshold rule and from suppression (a school's own team).
CONTROL_COLUMNS = ("partition", "priority", "exempt", "printed")
GROUP_COLUMNS = ("domain", "wave", "institutions", "cohort", "role")
ALL = "all"
ANY = "any"
# institutions = "settlement:urban": every institution of that settlement type (a pool of half
# the schools is not listed id by id in every report that shows it).
SETTLEMENT = "settlement:"
# A suppressed group's reason: below the threshold ("primary", the "<5*" mark), or hidden so that
# other cells cannot be worked out ("complementary", a mark of its own).
PRIMARY, COMPLEMENTARY = "primary", "complementary"
SHOWN = "shown"


class DisclosureError(UserError, ValueError):
    """The release cannot be made safe by suppression: two groups that cannot be hidden reveal
    each other, or a report would have to hide a number it cannot do without."""


# --------------------------------------------------------------------------- groups and atoms


def institutions_label(ids) -> str:
    """The ``institutions`` value of a group: its institution ids sorted and joined by ";"."""
    return ";".join(sorted({str(i) for i in ids}))


def group_keys(cells: pd.DataFrame) -> pd.Series:
    """One string per row naming its group: domain|wave|institutions|cohort|role. Built once per
    distinct group (rows of one group share the string: a pool's long list of institutions is
    not copied for every report that shows it)."""
    frame = cells[list(GROUP_COLUMNS)].astype(str)
    ids = frame.groupby(list(GROUP_COLUMNS), sort=False).ngroup()
    first = ~ids.duplicated()
    unique = frame[first]
    names = unique["domain"] + "|" + unique["wave"] + "|" + unique["institutions"] + "|" + unique["cohort"] + \
        "|" + unique["role"]
    return ids.map(pd.Series(names.to_numpy(), index=ids[first].to_numpy()))


def atoms_from_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Distinct participants per (domain, wave, institution, cohort, role, settlement) of the analysis data
    (``results/clean/scores.csv``: one row per participant, domain and wave with a score), with
    the pseudo-domain ``any`` (a score in some domain) and the pseudo-wave ``any`` (some wave)."""
    people = scores.dropna(subset=["score"])[["participant_key", "domain", "wave", "institution", "cohort",
                                              "role", "settlement"]].copy()
    people["role"] = people["role"].astype(object).where(people["role"].notna(), "unknown")
    people["cohort"] = people["cohort"].astype(object).where(people["cohort"].notna(), "unknown")
    frames = [people,
              people.assign(domain=ANY),
              people.assign(wave=ANY),
              people.assign(domain=ANY, wave=ANY)]
    every = pd.concat(frames, ignore_index=True).drop_duplicates(["participant_key", "domain", "wave"])
    atoms = every.groupby(["domain", "wave", "institution", "cohort", "role", "settlement"]).size().rename("n")
    return atoms.reset_index()


def memberships(groups: pd.DataFrame, atoms: pd.DataFrame) -> pd.DataFrame:
    """(group, atom) for every atom of every group: ``groups`` has an integer ``group`` and the
    GROUP_COLUMNS; ``atoms`` the atom columns (with the institution's ``settlement``) and ``n``
    (its index is the atom id)."""
    atoms = atoms.rename_axis("atom").reset_index()
    pooled_rows = (groups["institutions"] == ALL) | groups["institutions"].str.startswith(SETTLEMENT)
    listed = groups[~pooled_rows]
    explicit = (listed.assign(institution=listed["institutions"].str.split(";"))
                .explode("institution")[["group", "domain", "wave", "institution", "cohort", "role"]])
    explicit = explicit.merge(atoms, on=["domain", "wave", "institution"], suffixes=("", "_atom"))
    pooled = groups[pooled_rows][["group", "domain", "wave", "institutions", "cohort", "role"]]
    pooled = pooled.merge(atoms, on=["domain", "wave"], suffixes=("", "_atom"))
    place = pooled["institutions"].str.removeprefix(SETTLEMENT)
    pooled = pooled[(pooled["institutions"] == ALL) | (place == pooled["settlement"].astype(str))]
    both = pd.concat([explicit, pooled.drop(columns="institutions")], ignore_index=True)
    keep = (((both["cohort"] == ALL) | (both["cohort"] == both["cohort_atom"]))
            & ((both["role"] == ALL) | (both["role"] == both["role_atom"])))
    return both.loc[keep, ["group", "atom", "n"]].reset_index(drop=True)


def containment_pairs(members: pd.DataFrame, n: pd.Series, within: int | None = None) -> pd.DataFrame:
    """Pairs (outer, inner) of groups where inner's atoms are a proper subset of outer's.

    Each inner group is anchored at its first atom; only groups holding that atom can contain
    it, so the candidates are few per group (the levels that pool it) and the check is linear in
    the memberships. With ``within``, only pairs whose difference n_outer - n_inner lies in
    1..within-1 are returned (the ones the difference rule can fail on)."""
    if members.empty:
        return pd.DataFrame({"outer": [], "inner": [], "difference": []}, dtype="int64")
    anchor = members.groupby("group")["atom"].min().rename("atom").reset_index()
    candidates = members[["group", "atom"]].rename(columns={"group": "outer"}).merge(
        anchor.rename(columns={"group": "inner"}), on="atom")[["outer", "inner"]]
    candidates = candidates[candidates["outer"] != candidates["inner"]]
    difference = n.reindex(candidates["outer"]).to_numpy() - n.reindex(candidates["inner"]).to_numpy()
    keep = difference > 0 if within is None else (difference > 0) & (difference < within)
    candidates = candidates[keep].assign(difference=difference[keep])
    if candidates.empty:
        return candidates.reset_index(drop=True)
    width = int(members["atom"].max()) + 1
    outer_atoms = set_codes(members["group"].to_numpy(), members["atom"].to_numpy(), width)
    inner = candidates.merge(members[["group", "atom"]].rename(columns={"group": "inner"}), on="inner")
    present = np.isin(set_codes(inner["outer"].to_numpy(), inner["atom"].to_numpy(), width), outer_atoms)
    missing = pd.Series(~present).groupby([inner["outer"].to_numpy(), inner["inner"].to_numpy()]).sum()
    contained = missing[missing == 0].index
    pairs = candidates.set_index(["outer", "inner"]).loc[contained].reset_index()
    return pairs.sort_values(["outer", "inner"]).reset_index(drop=True)


def set_codes(groups: np.ndarray, atoms: np.ndarray, width: int) -> np.ndarray:
    """One integer per (group, atom), for vectorised membership tests."""
    return groups.astype(np.int64) * width + atoms.astype(np.int64)


# --------------------------------------------------------------------------- the rules


def group_table(cells: pd.DataFrame, atoms: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The distinct groups of ``cells`` (integer ``group``, key, n, priority, exempt,
    known_only) and their memberships. A group's n is its atoms' count where it has atoms, else
    the largest n printed for it; its priority the highest of its rows. It is ``exempt`` (never
    suppressed to protect another group: someone knows it anyway) when any row is, and
    ``known_only`` (not held to the threshold) when every row is."""
    keyed = cells.assign(key=group_keys(cells))
    groups = keyed.groupby("key", sort=True).agg(
        domain=("domain", "first"), wave=("wave", "first"), institutions=("institutions", "first"),
        cohort=("cohort", "first"), role=("role", "first"), printed_n=("n", "max"),
        priority=("priority", "max"), exempt=("exempt", "max"), known_only=("exempt", "min")).reset_index()
    groups["group"] = np.arange(len(groups))
    members = memberships(groups, atoms.reset_index(drop=True))
    from_atoms = members.groupby("group")["n"].sum()
    groups["n"] = from_atoms.reindex(groups["group"]).fillna(groups["printed_n"]).astype(int).to_numpy()
    return groups, members


def violations(cells: pd.DataFrame, atoms: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """Every failure of the three rules on the released ``cells`` (MANIFEST_COLUMNS plus
    CONTROL_COLUMNS): rule, outer and inner group keys (inner empty for the threshold rule),
    the size of the group left over (``difference``) and the group to suppress (``suppress``)."""
    columns = ["rule", "outer", "inner", "difference", "suppress"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    groups, members = group_table(cells, atoms)
    small = groups[(groups["n"] < min_cell) & ~groups["known_only"].astype(bool)]
    if len(small):
        # Below the threshold first: a hidden small group reveals nothing by difference, so the
        # pairs are judged among the groups that stay.
        return pd.DataFrame({"rule": "threshold", "outer": small["key"].to_numpy(), "inner": "",
                             "difference": small["n"].to_numpy(), "suppress": small["key"].to_numpy()})
    key = groups.set_index("group")["key"]
    n = groups.set_index("group")["n"]
    found = []
    pairs = containment_pairs(members, n, within=min_cell)
    if len(pairs):
        found.append(pd.DataFrame({"rule": "difference", "outer": key.reindex(pairs["outer"]).to_numpy(),
                                   "inner": key.reindex(pairs["inner"]).to_numpy(),
                                   "difference": pairs["difference"].to_numpy(),
                                   "suppress": choose(groups, pairs["outer"], pairs["inner"])}))
    found.append(remainder_violations(cells, groups, members, min_cell))
    found = [f for f in found if len(f)]
    if not found:
        return pd.DataFrame(columns=columns)
    table = pd.concat(found, ignore_index=True)
    return table[columns].drop_duplicates().sort_values(columns).reset_index(drop=True)


def choose(groups: pd.DataFrame, outer: pd.Series, inner: pd.Series) -> np.ndarray:
    """The group to suppress of each pair: the one of lower priority, never an exempt one; on
    a tie the outer (larger) group."""
    info = groups.set_index("group")
    rank = np.where(info["exempt"], np.inf, info["priority"].astype(float))
    rank = pd.Series(rank, index=info.index)
    outer_rank, inner_rank = rank.reindex(outer).to_numpy(), rank.reindex(inner).to_numpy()
    if np.any(np.isinf(outer_rank) & np.isinf(inner_rank)):
        both = np.isinf(outer_rank) & np.isinf(inner_rank)
        first = info["key"].reindex(np.asarray(outer)[both]).iloc[0]
        raise DisclosureError(f"two groups that cannot be suppressed reveal each other: {first}")
    pick = np.where(inner_rank < outer_rank, np.asarray(inner), np.asarray(outer))
    return info["key"].reindex(pick).to_numpy()


def remainder_violations(cells: pd.DataFrame, groups: pd.DataFrame, members: pd.DataFrame,
                         min_cell: int) -> pd.DataFrame:
    """Rule 3: for each family of disjoint groups and each released group A, A less the family's
    shown members inside A must be empty or at least ``min_cell``; and so must it less, in
    addition, any one known-only member (a school subtracting its own team as well). The
    member to suppress is the smallest shown one of lowest priority, unless A ranks lower."""
    columns = ["rule", "outer", "inner", "difference", "suppress"]
    labelled = cells[cells["partition"].astype(str) != ""]
    if labelled.empty:
        return pd.DataFrame(columns=columns)
    family = (labelled.assign(key=group_keys(labelled))[["key", "partition"]].drop_duplicates()
              .merge(groups[["key", "group", "n", "priority", "exempt", "known_only"]], on="key"))
    pairs = containment_pairs(members, groups.set_index("group")["n"])
    inside = pairs.merge(family.rename(columns={"group": "inner"}), on="inner")
    if inside.empty:
        return pd.DataFrame(columns=columns)
    n = groups.set_index("group")["n"]
    known = inside["known_only"].astype(bool)
    places = inside[["outer", "partition"]].drop_duplicates()
    covered = inside[~known].groupby(["outer", "partition"])["n"].sum().rename("covered").reset_index()
    places = places.merge(covered, on=["outer", "partition"], how="left").fillna({"covered": 0})
    places["left"] = n.reindex(places["outer"]).to_numpy() - places["covered"].to_numpy()
    own = inside[known][["outer", "partition", "n"]].rename(columns={"n": "own"})
    cases = pd.concat([places.assign(own=0), places.merge(own, on=["outer", "partition"])], ignore_index=True)
    cases["difference"] = cases["left"] - cases["own"]
    bad = cases[(cases["difference"] > 0) & (cases["difference"] < min_cell)]
    if bad.empty:
        return pd.DataFrame(columns=columns)
    shown = inside[~known].assign(rank=lambda t: np.where(t["exempt"], np.inf, t["priority"].astype(float)))
    weakest = (shown.sort_values(["rank", "n", "inner"]).drop_duplicates(["outer", "partition"])
               [["outer", "partition", "inner"]])
    bad = bad.merge(weakest, on=["outer", "partition"], how="left")
    bad["inner"] = bad["inner"].fillna(bad["outer"]).astype(int)
    key = groups.set_index("group")["key"]
    return pd.DataFrame({"rule": "remainder", "outer": key.reindex(bad["outer"]).to_numpy(),
                         "inner": bad["partition"].to_numpy(), "difference": bad["difference"].to_numpy(),
                         "suppress": choose(groups, bad["outer"], bad["inner"])})


# --------------------------------------------------------------------------- the control loop


def control(build: Callable[[dict[str, str]], pd.DataFrame], atoms: pd.DataFrame, min_cell: int,
            max_rounds: int = 100) -> tuple[pd.DataFrame, dict[str, str]]:
    """Suppress groups until the whole release passes the three rules.

    ``build(suppressed)`` returns the cells the reports would show given the groups suppressed
    so far (group key -> reason): MANIFEST_COLUMNS plus CONTROL_COLUMNS; rows of suppressed
    groups may be returned (they are marked, not shown). Returns every returned cell with its
    ``status`` (shown, primary or complementary) and the suppressed groups with their reason."""
    suppressed: dict[str, str] = {}
    for _ in range(max_rounds):
        cells = build(dict(suppressed)).reset_index(drop=True)
        status = cell_status(cells, suppressed)
        # What an attacker holds: every shown cell, and the exempt groups (a team knows its own
        # members) even where their printed cells are suppressed.
        known = cells[(status == SHOWN) | cells["exempt"].astype(bool)]
        found = violations(known, atoms, min_cell)
        if found.empty:
            return cells.assign(status=status.to_numpy()), suppressed
        for rule, key in found[["rule", "suppress"]].drop_duplicates("suppress").itertuples(index=False):
            suppressed[key] = PRIMARY if rule == "threshold" else COMPLEMENTARY
        # (a round finds either threshold failures only, or pair and family failures only)
    raise DisclosureError(f"disclosure control did not settle in {max_rounds} rounds")


def cell_status(cells: pd.DataFrame, suppressed: dict[str, str]) -> pd.Series:
    """shown, or the reason its group was suppressed."""
    reason = group_keys(cells).map(suppressed)
    return reason.fillna(SHOWN).astype(object)


def manifest(cells: pd.DataFrame) -> pd.DataFrame:
    """The rows of released_cells.csv: the printed cells that are shown, in a stable order."""
    shown = cells[(cells["status"] == SHOWN) & cells["printed"].astype(bool)]
    table = shown[list(MANIFEST_COLUMNS)].copy()
    table["n"] = table["n"].astype(int)
    return table.sort_values(list(MANIFEST_COLUMNS[:7]), kind="stable").reset_index(drop=True)

"""The disclosure control of the whole release (dpo_eval.release.manifest), on small hand-made releases
whose attacks are worked out by hand."""

import time

import numpy as np
import pandas as pd
import pytest

from dpo_eval.release import manifest as release
from dpo_eval.release.manifest import (COMPLEMENTARY, PRIMARY, SHOWN, DisclosureError, atoms_from_scores,
                              containment_pairs, control, group_table, manifest, violations)

MIN_CELL = 5


def scores_of(teams: dict[str, tuple[str, int]], domain="universal", wave="pre") -> pd.DataFrame:
    """One score per participant: teams maps institution -> (cohort, size)."""
    rows = []
    for institution, (cohort, size) in teams.items():
        for i in range(size):
            rows.append({"participant_key": f"{institution}-{i}", "domain": domain, "wave": wave, "score": 3.0,
                         "institution": institution, "cohort": cohort, "role": "deputy" if i % 2 else "director",
                         "settlement": "urban"})
    return pd.DataFrame(rows)


def cell(report, institutions, n, cohort="all", role="all", domain="universal", wave="pre", item="scores",
         partition="", priority=1, exempt=False, printed=True, value=3.0):
    return {"report": report, "item": item, "domain": domain, "wave": wave, "institutions": institutions,
            "cohort": cohort, "role": role, "n": n, "value": value, "partition": partition,
            "priority": priority, "exempt": exempt, "printed": printed}


def cells(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


# Municipality M: team A (programme, 5 respondents), team B (programme, 1), team C (comparison, 6).
TEAMS = {"A": ("program", 5), "B": ("program", 1), "C": ("comparison", 6)}


def test_atoms_count_distinct_participants_also_over_any_domain_and_wave():
    scores = pd.concat([scores_of({"A": ("program", 3)}), scores_of({"A": ("program", 2)}, domain="professional"),
                        scores_of({"A": ("program", 3)}, wave="post")], ignore_index=True)
    atoms = atoms_from_scores(scores)
    total = atoms.groupby(["domain", "wave"])["n"].sum()
    assert total[("universal", "pre")] == 3 and total[("professional", "pre")] == 2
    assert total[("any", "pre")] == 3 and total[("any", "post")] == 3
    assert total[("universal", "any")] == 3 and total[("any", "any")] == 3


def test_containment_follows_the_participants_not_the_labels():
    atoms = atoms_from_scores(scores_of(TEAMS))
    released = cells(cell("x", "A;B", 6), cell("x", "all", 6, cohort="program"), cell("x", "A", 5),
                     cell("x", "all", 12), cell("x", "C", 6))
    groups, members = group_table(released, atoms)
    pairs = containment_pairs(members, groups.set_index("group")["n"])
    key = groups.set_index("group")["key"]
    found = {(key[o], key[i]) for o, i in zip(pairs["outer"], pairs["inner"])}
    # The programme cohort and the pool A;B are the same people: neither is "inside" the other.
    assert ("universal|pre|all|program|all", "universal|pre|A;B|all|all") not in found
    assert ("universal|pre|A;B|all|all", "universal|pre|A|all|all") in found
    assert ("universal|pre|all|all|all", "universal|pre|all|program|all") in found
    assert ("universal|pre|all|all|all", "universal|pre|C|all|all") in found
    assert ("universal|pre|A|all|all", "universal|pre|C|all|all") not in found
    assert dict(zip(groups["key"], groups["n"]))["universal|pre|A;B|all|all"] == 6


def test_a_pool_one_person_larger_than_a_shown_team_is_a_difference_violation():
    atoms = atoms_from_scores(scores_of(TEAMS))
    released = cells(cell("institutions/A", "A", 5, priority=3), cell("institutions/B", "A;B", 6, cohort="program"))
    found = violations(released, atoms, MIN_CELL)
    assert found[["rule", "outer", "inner", "difference"]].values.tolist() == [
        ["difference", "universal|pre|A;B|program|all", "universal|pre|A|all|all", 1]]
    # The pooled stand-in ranks below the team's own figure: it is the one suppressed.
    assert found["suppress"].tolist() == ["universal|pre|A;B|program|all"]
    # A difference of min_cell or more is allowed: team B with 5 respondents.
    bigger = atoms_from_scores(scores_of({"A": ("program", 5), "B": ("program", 5)}))
    released = cells(cell("a", "A", 5), cell("b", "A;B", 10))
    assert violations(released, bigger, MIN_CELL).empty


def test_threshold_first_then_differences_among_what_stays():
    atoms = atoms_from_scores(scores_of(TEAMS))
    released = cells(cell("b", "B", 1), cell("m", "A;B;C", 12), cell("a", "A", 5, priority=3))
    found = violations(released, atoms, MIN_CELL)
    # B alone is below the threshold; no pair is judged with it (hidden, it reveals nothing).
    assert found["rule"].tolist() == ["threshold"] and found["suppress"].tolist() == ["universal|pre|B|all|all"]


def test_remainder_of_a_table_total_less_its_shown_cells():
    """A total of 12 with shown cells 5 and 6 gives away the hidden third cell (1)."""
    atoms = atoms_from_scores(scores_of(TEAMS))
    released = cells(cell("e", "A", 5, item="table", partition="table", priority=2),
                     cell("e", "C", 6, item="table", partition="table", priority=2),
                     cell("e", "all", 12, item="table", priority=3))
    found = violations(released, atoms, MIN_CELL)
    assert found["rule"].tolist() == ["remainder"] and found["difference"].tolist() == [1]
    # The smallest cell of the table goes, not the total (which ranks higher).
    assert found["suppress"].tolist() == ["universal|pre|A|all|all"]


def test_own_team_known_to_its_reader_protects_the_pool_and_is_never_suppressed():
    atoms = atoms_from_scores(scores_of({"A": ("program", 3), "B": ("program", 4)}))
    released = cells(cell("institutions/A", "A", 3, exempt=True, printed=False, priority=9),
                     cell("institutions/A", "A;B", 7, priority=1))
    found = violations(released, atoms, MIN_CELL)
    assert found["rule"].tolist() == ["difference"] and found["suppress"].tolist() == ["universal|pre|A;B|all|all"]
    both = cells(cell("a", "A", 3, exempt=True), cell("a", "A;B", 7, exempt=True))
    with pytest.raises(DisclosureError, match="cannot be suppressed"):
        violations(both, atoms, MIN_CELL)


def test_control_moves_a_school_to_the_next_level_until_the_release_passes():
    """School B's report falls back from its municipality-and-cohort pool (A;B, which is team A
    plus one person) to the whole programme cohort, which passes (but A;B;D is the cohort too)."""
    atoms = atoms_from_scores(scores_of({**TEAMS, "D": ("program", 6)}))
    levels = [("A;B", "program"), ("all", "program")]

    def build(suppressed):
        rows = [cell("institutions/A", "A", 5, priority=3, exempt=True),
                cell("institutions/B", "B", 1, priority=3, exempt=True, printed=False)]
        for institutions, cohort in levels:
            row = cell("institutions/B", institutions, 0, cohort=cohort)
            if release.group_keys(pd.DataFrame([row])).iloc[0] not in suppressed:
                break
        rows.append(row)
        return pd.DataFrame(rows)

    shown, suppressed = control(build, atoms, MIN_CELL)
    assert suppressed == {"universal|pre|A;B|program|all": COMPLEMENTARY}
    final = shown[shown["report"] == "institutions/B"]
    assert final["institutions"].tolist() == ["B", "all"] and set(final["status"]) == {SHOWN}
    assert manifest(shown)["institutions"].tolist() == ["A", "all"]
    assert violations(shown[shown["status"] == SHOWN], atoms, MIN_CELL).empty


def test_control_marks_small_groups_primary_and_their_complements_complementary():
    atoms = atoms_from_scores(scores_of({"A": ("program", 2), "B": ("program", 6), "C": ("program", 7)}))
    table = cells(*[cell("e", i, n, item="t", partition="t", priority=2) for i, n in (("A", 2), ("B", 6), ("C", 7))],
                  cell("e", "all", 15, item="t", priority=3))
    shown, suppressed = control(lambda s: table, atoms, MIN_CELL)
    assert suppressed == {"universal|pre|A|all|all": PRIMARY, "universal|pre|B|all|all": COMPLEMENTARY}
    assert shown.set_index("institutions")["status"].to_dict() == {"A": PRIMARY, "B": COMPLEMENTARY,
                                                                   "C": SHOWN, "all": SHOWN}


def test_manifest_has_the_documented_columns_and_only_shown_printed_cells():
    atoms = atoms_from_scores(scores_of(TEAMS))
    table = cells(cell("e", "A", 5), cell("e", "B", 1), cell("e", "C", 6, printed=False))
    shown, _ = control(lambda s: table, atoms, MIN_CELL)
    out = manifest(shown)
    assert tuple(out.columns) == release.MANIFEST_COLUMNS
    assert out["institutions"].tolist() == ["A"]


def test_ten_thousand_schools_are_controlled_in_seconds():
    """Linear in the cells: 10,000 schools in municipalities of three, every school's team cell and
    its municipality pool released, cohort and region on top."""
    rng = np.random.default_rng(7)
    schools = 10_000
    sizes = rng.integers(1, 9, schools)
    ids = np.array([f"S{i:05d}" for i in range(schools)])
    municipality = np.arange(schools) // 3
    cohort = np.where(np.arange(schools) % 2, "program", "comparison")
    key = np.repeat(ids, sizes)
    scores = pd.DataFrame({"participant_key": [f"{k}-{j}" for k, s in zip(ids, sizes) for j in range(s)],
                           "domain": "universal", "wave": "pre", "score": 3.0, "institution": key,
                           "cohort": np.repeat(cohort, sizes), "role": "deputy", "settlement": "rural"})
    atoms = atoms_from_scores(scores)
    pools = pd.DataFrame({"id": ids, "m": municipality, "cohort": cohort, "n": sizes})
    pool_of = pools.groupby(["m", "cohort"]).agg(institutions=("id", lambda s: ";".join(sorted(s))),
                                                 n=("n", "sum")).reset_index()
    rows = pd.concat([
        pd.DataFrame({"report": "institutions/" + ids, "institutions": ids, "n": sizes, "partition": "team",
                      "priority": 3, "exempt": True, "printed": False}),
        pd.DataFrame({"report": "evaluation", "institutions": pool_of["institutions"], "n": pool_of["n"],
                      "partition": "pool", "priority": 1, "exempt": False, "printed": True}),
        pd.DataFrame({"report": "evaluation", "institutions": "all", "n": [int(sizes.sum())], "partition": "",
                      "priority": 2, "exempt": False, "printed": True}),
    ], ignore_index=True).assign(item="t", domain="universal", wave="pre", cohort="all", role="all", value=3.0)
    start = time.perf_counter()
    shown, suppressed = control(lambda s: rows, atoms, MIN_CELL)
    elapsed = time.perf_counter() - start
    assert len(suppressed) > 0 and elapsed < 60, elapsed
    assert violations(shown[shown["status"] == SHOWN], atoms, MIN_CELL).empty


def test_a_team_known_to_its_reader_still_protects_after_its_printed_cell_is_suppressed():
    """Team A (3) cannot print its own mean (threshold), but A knows its members: the pool A;B
    (7) less A gives B's 4 respondents, so the pool is hidden too."""
    atoms = atoms_from_scores(scores_of({"A": ("program", 3), "B": ("program", 4), "C": ("program", 9)}))
    table = cells(cell("institutions/A", "A", 3, priority=3),
                  cell("institutions/A", "A", 3, priority=3, exempt=True, printed=False),
                  cell("institutions/A", "A;B", 7, priority=1))
    shown, suppressed = control(lambda s: table, atoms, MIN_CELL)
    assert suppressed == {"universal|pre|A|all|all": PRIMARY, "universal|pre|A;B|all|all": COMPLEMENTARY}
    assert manifest(shown).empty


def test_a_school_subtracting_its_own_team_and_a_shown_team_from_a_pool():
    """Pool A;B;C (12) shown; team A (6) shown in its report; B (4) knows itself: 12 - 6 - 4
    leaves C's 2 respondents. Neither difference of two numbers is small (12 - 6, 12 - 4)."""
    atoms = atoms_from_scores(scores_of({"A": ("program", 6), "B": ("program", 4), "C": ("program", 2)}))
    table = cells(cell("institutions/A", "A", 6, priority=3, partition="team"),
                  cell("institutions/A", "A", 6, priority=3, exempt=True, printed=False, partition="team"),
                  cell("institutions/B", "B", 4, priority=3, exempt=True, printed=False, partition="team"),
                  cell("institutions/B", "A;B;C", 12, priority=1))
    found = violations(table, atoms, MIN_CELL)
    assert found[["rule", "difference", "suppress"]].values.tolist() == [["remainder", 2, "universal|pre|A;B;C|all|all"]]

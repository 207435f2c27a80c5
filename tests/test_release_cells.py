"""The cells of the school reports and their levels (dpo_eval.release.cells), on a small
hand-made study: municipality M has programme teams A (6) and B (4) and comparison teams C (9)
and D (8); municipality N has programme team E (7) comparison team F (5) and programme team H (3); municipality P has programme teams J (2) and L
(3); school G sent nobody."""

import numpy as np
import pandas as pd
import pytest

from dpo_eval.release.manifest import SHOWN, manifest, violations
from dpo_eval.release.cells import control_release, school_cells

DOMAINS = ["universal"]
TEAMS = {"A": ("M", "program", 6), "B": ("M", "program", 4), "C": ("M", "comparison", 9),
         "D": ("M", "comparison", 8), "E": ("N", "program", 7), "F": ("N", "comparison", 5),
         "H": ("N", "program", 3), "J": ("P", "program", 2), "L": ("P", "program", 3)}


def registry():
    rows = [{"id": i, "municipality": m, "type": "school", "settlement": "urban" if m == "M" else "rural"}
            for i, (m, _, _) in TEAMS.items()]
    rows.append({"id": "G", "municipality": "N", "type": "school", "settlement": "rural"})
    return pd.DataFrame(rows)


def scores():
    rng = np.random.default_rng(3)
    rows = []
    for institution, (place, cohort, size) in TEAMS.items():
        for i in range(size):
            for wave in ("pre", "post"):
                rows.append({"participant_key": f"{institution}{i}", "domain": "universal", "wave": wave,
                             "score": float(rng.integers(1, 6)), "institution": institution, "cohort": cohort,
                             "role": "deputy", "settlement": "urban" if place == "M" else "rural"})
    return pd.DataFrame(rows)


def needs():
    rows = [{"respondent_key": f"R{i}{k}", "stakeholder": "school", "institution": i, "area": "nd_a", "value": 4.0}
            for i in TEAMS for k in range(3)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def controlled():
    """The study's whole release after control (computed once for the tests of this module)."""
    return control_release(scores(), needs(), registry(), {}, DOMAINS, [], 5)


def test_levels_follow_the_team_then_its_cohort_in_its_municipality_then_its_cohort():
    cells, levels = school_cells(scores(), needs(), registry(), DOMAINS, 5, {})
    # A, C, D, E, F: own teams of 5+; B (4) pools with A in M's programme schools (10, 6 besides
    # B), H (3) with E in N's (10, 7 besides H): each report alone would be fine. J and L (5
    # together) go to the programme cohort (25).
    assert levels.to_dict() == {"A": "team", "B": "municipality_cohort", "C": "team", "D": "team", "E": "team",
                                "F": "team", "G": "none", "H": "municipality_cohort", "J": "cohort", "L": "cohort"}
    pooled = cells[(cells["report"] == "institutions/B") & (cells["item"] == "scores")]
    assert set(pooled["institutions"]) == {"A;B"} and set(pooled["cohort"]) == {"program"}
    assert not ((cells["report"] == "institutions/G") & (cells["item"] == "scores")).any()


def test_a_pool_that_another_reader_can_subtract_itself_from_is_dropped_and_the_school_moves_on(controlled):
    """A (6) knows its own team: the pool A;B (10) shown to B would give A the mean of B's 4 (and
    E, knowing itself, H's 3 from E;H). The control hides both pools; B and H move to their
    whole cohort (25), which less the shown teams A and E and any one school's own team still
    leaves at least 8 people."""
    b = controlled[(controlled["report"] == "institutions/B") & (controlled["item"] == "scores")]
    assert set(b["level"]) == {"cohort"} and set(b["institutions"]) == {"all"} and set(b["cohort"]) == {"program"}
    assert set(b["status"]) == {SHOWN} and set(b["n"]) == {25}
    assert not manifest(controlled)["institutions"].isin(["A;B", "E;H"]).any()
    shown = controlled[(controlled["status"] == SHOWN) | controlled["exempt"]]
    atoms_check = violations(shown, _atoms(), 5)
    assert atoms_check.empty, atoms_check


def test_a_pool_less_the_shown_teams_and_a_readers_own_team_is_not_left_small():
    """Without J and L, the programme cohort (20) less the shown teams A and E (13) less B's own
    4 would leave H's 3: no programme pool can be shown, B and H get no scores, and say why."""
    teams = {k: v for k, v in TEAMS.items() if k not in ("J", "L")}
    small = scores()
    small = small[small["institution"].isin(teams)]
    controlled = control_release(small, needs(), registry()[registry()["id"].isin([*teams, "G"])], {}, DOMAINS, [], 5)
    for school in ("B", "H"):
        rows = controlled[controlled["report"] == f"institutions/{school}"]
        assert set(rows["level"]) == {"none"} and set(rows["level_reason"]) == {"protected"}


def test_no_pool_shown_to_a_school_mixes_the_cohorts(controlled):
    cohort_of = {i: c for i, (_, c, _) in TEAMS.items()}
    pools = controlled[(controlled["item"] == "scores") & (controlled["level"] != "team")]
    for row in pools.itertuples():
        school = row.report.split("/")[1]
        assert row.cohort == cohort_of[school], row
        if row.institutions != "all":
            assert {cohort_of[i] for i in row.institutions.split(";")} == {row.cohort}, row


def test_marks_are_honest_primary_only_below_the_threshold(controlled):
    printed = controlled[controlled["printed"].astype(bool)]
    primary = printed[printed["status"] == "primary"]
    assert len(primary) and (primary["n"] < 5).all()
    # The own needs of every school (3 respondents) are below the threshold; nothing else is.
    assert set(primary["item"]) == {"needs_own"}
    complementary = printed[printed["status"] == "complementary"]
    assert (complementary["n"] >= 5).all()
    assert manifest(controlled)["value"].notna().all()


def _atoms():
    from dpo_eval.release.manifest import atoms_from_scores
    from dpo_eval.release.cells import needs_atoms

    return pd.concat([atoms_from_scores(scores()), needs_atoms(needs(), registry())], ignore_index=True)

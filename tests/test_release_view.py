"""One report's view of the disclosure control table: values where shown, honest marks."""

import pandas as pd

from dpo_eval.release.view import ReportCells, low_threshold_note, marks, municipality_status, score_rows

STRINGS = {"suppressed_mark": "<{min_cell}*", "complementary_mark": "×",
           "low_threshold_note": "threshold {min_cell} (usually {advised}; {min_cell}-{last} shown)"}


def control():
    rows = [("institutions/A", "scores", "universal", "pre", "A", 6, 3.214, "shown"),
            ("institutions/A", "scores", "universal", "followup", "A", 2, None, "primary"),
            ("institutions/A", "scores_region", "universal", "pre", "all", 40, 3.5, "shown"),
            ("institutions/A", "scores_region", "universal", "followup", "all", 20, None, "complementary"),
            ("institutions/A", "scores_difference", "universal", "pre", "A", 6, -0.29, "shown"),
            ("evaluation.en", "municipalities", "any", "any", "A;B", 9, 9.0, "complementary"),
            ("evaluation.en", "municipalities", "any", "any", "C", 3, None, "primary")]
    frame = pd.DataFrame(rows, columns=["report", "item", "domain", "wave", "institutions", "n", "value", "status"])
    return frame.assign(cohort="all", role="all", label=["", "", "", "", "", "M", "N"], printed=True,
                        level=["team"] * 5 + [""] * 2)


def test_marks_say_why_a_cell_is_hidden():
    view = ReportCells(control(), "institutions/A", marks(STRINGS, 5))
    rows = score_rows(view, ["universal"], ("pre", "post", "followup"), lambda v: f"{v:.2f}", str)
    assert [(r["wave"], r["mine"], r["n"], r["region"], r["difference"]) for r in rows] == [
        ("pre", "3.21", "6", "3.50", "-0.29"), ("followup", "<5*", "", "×", "")]
    assert view.level == "team"


def test_table_statuses_follow_the_control_and_uncontrolled_cells_are_shown():
    view = ReportCells(control(), "evaluation.en", marks(STRINGS, 5))
    table = pd.DataFrame({"municipality": ["M", "N", "O"], "cohort": ["all", "all", "all"], "n": [9, 3, 12]})
    assert municipality_status(view, table).tolist() == ["complementary", "primary", "shown"]


def test_a_low_threshold_is_stated_and_the_usual_one_is_not():
    assert low_threshold_note(STRINGS, 3) == "threshold 3 (usually 5; 3-4 shown)"
    assert low_threshold_note(STRINGS, 5) is None


def test_the_evaluation_report_stops_where_a_cell_it_cannot_hide_was_hidden():
    frame = control()
    frame = pd.concat([frame, frame.iloc[[0]].assign(report="evaluation.en", item="did:estimate", status="primary",
                                                     n=3)], ignore_index=True)
    view = ReportCells(frame, "evaluation.en", marks(STRINGS, 5))
    import pytest

    from dpo_eval.release.view import check_evaluation_shown
    with pytest.raises(ValueError, match=r"1 cell\(s\) of the evaluation report .* did:estimate .* n = 3"):
        check_evaluation_shown(view)

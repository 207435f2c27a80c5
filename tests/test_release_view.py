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


def test_a_report_reads_the_same_cells_from_the_control_split_by_report():
    """A batch of school reports splits the control once (ControlByReport) instead of scanning
    it per report: every report sees the same rows, level and cells as from the whole table,
    a report without cells none, and two cells with the same keys are still refused."""
    import pytest

    from dpo_eval.release.view import ControlByReport

    frame = control()
    split = ControlByReport(frame)
    for report in ("institutions/A", "evaluation.en", "institutions/none"):
        whole, parts = ReportCells(frame, report, marks(STRINGS, 5)), ReportCells(split, report, marks(STRINGS, 5))
        pd.testing.assert_frame_equal(whole.rows, parts.rows)
        assert whole.level == parts.level
    view = ReportCells(split, "institutions/A", marks(STRINGS, 5))
    assert view.find("scores", domain="universal", wave="pre")["value"] == 3.214
    assert view.find("scores", domain="universal", wave="post") is None
    assert view.text("scores", lambda v: f"{v:.1f}", domain="universal", wave="followup") == "<5*"
    assert ReportCells(split, "institutions/none", {}).find("scores") is None
    doubled = ControlByReport(pd.concat([frame, frame.iloc[[0]]], ignore_index=True))
    with pytest.raises(ValueError, match="2 cells of scores"):
        ReportCells(doubled, "institutions/A", {}).find("scores", domain="universal", wave="pre")

"""One report's view of the disclosure control table: values where shown, honest marks."""

import pandas as pd
import pytest

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


def flow_control(cohort: str, n: int):
    """The control's flow cells of one follow-up row of ``cohort`` with ``n`` people, below
    the threshold (primary)."""
    rows = [("evaluation.en", f"flow:{count}", "any", "followup", cohort, n, None, "primary")
            for count in ("received", "duplicates", "participants", "unmatched", "careless", "excluded", "analysed")]
    frame = pd.DataFrame(rows, columns=["report", "item", "domain", "wave", "cohort", "n", "value", "status"])
    return frame.assign(institutions="all", role="all", label="", printed=True, level="")


def test_the_flow_of_people_without_a_cohort_is_printed_as_a_mark_not_a_stop():
    """A national study has a handful of follow-up respondents whose code matches nobody (no
    wave gives their cohort: excluded). Their flow row, fewer than min_cell people, is printed
    with the mark of a hidden count; a cohort's own flow below the threshold still stops the
    evaluation report (its sample is too small to publish)."""
    import pytest

    from dpo_eval.release.view import check_evaluation_shown, flow_status

    view = ReportCells(pd.concat([control(), flow_control("unknown", 4)], ignore_index=True), "evaluation.en",
                       marks(STRINGS, 5))
    check_evaluation_shown(view)
    flow = pd.DataFrame({"wave": ["followup", "followup"], "cohort": ["program", "unknown"]})
    status = flow_status(view, flow, ["received", "excluded", "duplicates"])
    assert status.values.tolist() == [["shown"] * 3, ["primary"] * 3]
    small = ReportCells(pd.concat([control(), flow_control("program", 4)], ignore_index=True), "evaluation.en",
                        marks(STRINGS, 5))
    with pytest.raises(ValueError, match=r"7 cell\(s\) of the evaluation report .* flow:received .* n = 4"):
        check_evaluation_shown(small)


def test_the_flow_table_and_its_note_print_the_mark_of_a_hidden_count():
    from dpo_eval.reporting import sentences
    from dpo_eval.reporting.evaluation_context import flow_rows, without_cohort_marks

    view = ReportCells(pd.concat([control(), flow_control("unknown", 4)], ignore_index=True), "evaluation.en",
                       marks(STRINGS, 5))
    flow = pd.DataFrame([
        {"wave": "followup", "domain": None, "cohort": "program", "received": 30, "duplicates": 1, "participants": 29,
         "unmatched": 0, "careless": 2, "excluded": 0, "analysed": 29, "set_missing": 0},
        {"wave": "followup", "domain": None, "cohort": "unknown", "received": 4, "duplicates": 0, "participants": 4,
         "unmatched": 4, "careless": 0, "excluded": 4, "analysed": 0, "set_missing": 0}])
    t = {"waves": {"followup": "follow-up"}, "cohorts": {"program": "program"}, "unknown": "not assigned",
         "nouns": {"participant": {"one": "participant", "other": "participants"}, "value": {"one": "value", "other": "values"}},
         "cleaning_notes": {"wave_participants": "{wave} wave, {count}", "wave_count": "{wave}: {count}",
                            "set_missing": "set to missing: {waves}",
                            "without_cohort": "Not assigned: {waves} (rows {unknown} of Table {table})."}}
    per_wave, _, hidden = flow_rows(flow, view, t, {"domain": {}})
    assert [(r["cohort"], r["received"], r["excluded"], r["duplicates"]) for r in per_wave] == [
        ("program", "30", "0", "1"), ("not assigned", "<5*", "<5*", "<5*")]
    assert hidden == {"primary"}
    notes = sentences.cleaning_notes(flow, t, "en", table=2, marks=without_cohort_marks(per_wave))
    assert notes == ["Not assigned: follow-up wave, <5* (rows not assigned of Table 2)."]
    assert "4" not in " ".join(notes) + " ".join(str(v) for r in per_wave[1:] for k, v in r.items()
                                                 if k not in ("wave_key", "cohort_key"))


def test_a_batch_reads_its_stretch_of_the_sorted_control_table_and_nothing_else(tmp_path):
    """read_control with reports: the rows of those reports, the same frame (values, dtypes,
    order) as the whole table filtered, found by binary search in the file sorted by report;
    a line it has no business parsing (here a malformed one among the evaluation rows) is
    never parsed, while the whole read fails on it."""
    from dpo_eval.release.view import read_control

    schools = [f"S{i:02d}" for i in range(23)]
    rows = [(f"institutions/{s}", "scores", d, w, s, 5 + i, round(3 + i / 10, 2) if w != "followup" else None,
             "shown" if w != "followup" else "primary") for i, s in enumerate(schools)
            for d in ("u", "p") for w in ("pre", "post", "followup")]
    rows += [("evaluation.en", "municipalities", "any", "any", "S01;S02", 9, 9.0, "shown"),
             ("open_data", "k", "any", "any", "all", 40, 5.0, "shown")]
    table = pd.DataFrame(rows, columns=["report", "item", "domain", "wave", "institutions", "n", "value", "status"])
    table = table.assign(cohort="all", role="all", label="", printed=True, level="team").sort_values(
        ["report", "item", "domain", "wave"], kind="stable")
    path = tmp_path / "disclosure_control.csv"
    table.to_csv(path, index=False)
    whole = read_control(path)
    for size in (1, 4, 23):
        for start in range(0, len(schools), size):
            wanted = [f"institutions/{s}" for s in schools[start:start + size]]
            part = read_control(path, wanted + ["institutions/ABSENT"])
            pd.testing.assert_frame_equal(part, whole[whole["report"].isin(wanted)].reset_index(drop=True))
    pd.testing.assert_frame_equal(read_control(path, ["open_data", "evaluation.en"]),
                                  whole[whole["report"].isin(["open_data", "evaluation.en"])].reset_index(drop=True))
    assert read_control(path, ["institutions/ABSENT"]).empty and read_control(path, []).empty
    # Without its final line break the last report is still read whole.
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert len(read_control(path, ["open_data"])) == 1
    # A broken line outside the stretch: the batch does not see it, the whole read does.
    text = path.read_text(encoding="utf-8").replace("evaluation.en,municipalities", 'evaluation.en,"broken', 1)
    path.write_text(text, encoding="utf-8")
    assert len(read_control(path, ["institutions/S07", "institutions/S08"])) == 12
    with pytest.raises(pd.errors.ParserError):
        read_control(path)

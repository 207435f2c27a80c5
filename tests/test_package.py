"""Disclosure control of the data packages, checked from the unpacked packages alone."""

import re
import zipfile

import pandas as pd
import pytest
import yaml

from dpo_eval.release.packages import (QUASI_IDENTIFIERS, achieved_k, local_suppression, merge_rare_patterns, open_responses,
                              smallest_group)


def unpack(package, target):
    with zipfile.ZipFile(package) as archive:
        archive.extractall(target)
        return archive.namelist()


def people_of(responses: pd.DataFrame, key: str) -> pd.DataFrame:
    return responses.drop_duplicates(key)[[key, *QUASI_IDENTIFIERS]]


@pytest.mark.pipeline
def test_open_data_package_is_k_anonymous_on_its_quasi_identifiers(demo_run, tmp_path):
    min_cell = yaml.safe_load((demo_run / "config" / "config.yaml").read_text(encoding="utf-8"))["reports"]["min_cell"]
    names = unpack(demo_run / "results" / "open_data_package.zip", tmp_path)
    assert sorted(names) == ["dpo_eval_open_data/OPEN_DATA.md", "dpo_eval_open_data/responses.csv"]
    root = tmp_path / "dpo_eval_open_data"
    responses = pd.read_csv(root / "responses.csv", dtype=str, keep_default_na=False)
    assert not {"municipality", "settlement", "timestamp", "participant_key", "years_in_management",
                "raw_value"} & set(responses.columns)
    people = responses.drop_duplicates("participant")
    keys = list(QUASI_IDENTIFIERS)
    smallest = int(people.groupby(keys).size().min())
    assert smallest >= min_cell
    # Also among the respondents of each wave, and among the participants of each wave pattern
    # (the waves a participant's rows show; "then" is answered with "post").
    for wave, rows in responses.groupby("wave"):
        assert int(rows.drop_duplicates("participant").groupby(keys).size().min()) >= min_cell, wave
    pattern = (responses.assign(wave=responses["wave"].replace({"then": "post"}))
               .groupby("participant")["wave"].agg(lambda w: "+".join(sorted(set(w)))))
    with_pattern = people.assign(pattern=people["participant"].map(pattern))
    assert int(with_pattern.groupby([*keys, "pattern"]).size().min()) >= min_cell
    readme = (root / "OPEN_DATA.md").read_text(encoding="utf-8")
    assert f"| institution, role, years_band, cohort | {smallest} |" in readme
    assert "| institution, role, years_band, cohort, wave pattern |" in readme
    assert set(people["years_band"]) <= {"0-2", "3-5", "6-10", "11-20", "21+", "unknown", "*"}
    # Nothing but the quasi-identifiers was touched, apart from the rows of merged wave
    # patterns, which OPEN_DATA.md counts: the other answers are the analysis data's.
    clean = pd.read_csv(demo_run / "results" / "clean" / "responses.csv")
    dropped = int(re.search(r"rows left out: (\d+)", readme).group(1))
    assert len(responses) == len(clean) - dropped
    assert dropped < 0.05 * len(clean)


@pytest.mark.pipeline
def test_reproduction_package_has_no_recipients_or_times_and_states_its_k(demo_run, tmp_path):
    names = unpack(demo_run / "results" / "reproduction_package.zip", tmp_path)
    root = tmp_path / "dpo_eval_reproduction"
    assert "dpo_eval_reproduction/config/recipients.csv" not in names
    assert not any(n.endswith("respondents.csv") for n in names)
    recipients = pd.read_csv(demo_run / "config" / "recipients.csv", dtype=str)
    addresses = {a for cell in recipients["emails"] for a in cell.split(";")}
    data = [n for n in names if n.startswith(("dpo_eval_reproduction/results/", "dpo_eval_reproduction/config/"))]
    assert any(n.endswith("results/clean/responses.csv") for n in data)
    for name in data:
        text = (tmp_path / name).read_bytes().decode("utf-8", errors="replace")
        assert not any(a in text for a in addresses), name
        assert not re.search(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d", text), name
    responses = pd.read_csv(root / "results" / "clean" / "responses.csv")
    people = people_of(responses.assign(years_band=pd.cut(responses["years_in_management"],
                                                          [-1, 2, 5, 10, 20, 1000],
                                                          labels=["0-2", "3-5", "6-10", "11-20", "21+"])
                                        .astype(object).fillna("unknown"),
                                        role=responses["role"].fillna("unknown")), "participant_key")
    k = int(people.groupby(list(QUASI_IDENTIFIERS)).size().min())
    assert f"has {k} participant(s) (k = {k})" in (root / "REPRODUCE.md").read_text(encoding="utf-8")


def test_local_suppression_reaches_k_and_only_suppresses():
    people = pd.DataFrame({"participant_key": [f"P{i}" for i in range(12)],
                           "institution": ["A"] * 6 + ["B"] * 4 + ["C"] * 2,
                           "role": ["director", "deputy", "deputy", "deputy", "deputy", "deputy",
                                    "director", "deputy", "deputy", "deputy", "director", "deputy"],
                           "years_band": ["0-2"] * 6 + ["3-5"] * 6, "cohort": ["program"] * 12})
    suppressed, counts = local_suppression(people, 5)
    assert smallest_group(suppressed) >= 5
    columns = list(QUASI_IDENTIFIERS)
    kept = suppressed[columns] == people[columns]
    assert ((suppressed[columns] == "*") | kept).all().all()
    assert counts["records_removed"] == 0
    assert sum(counts[c] for c in columns) == int((~kept).sum().sum())
    with pytest.raises(ValueError, match="only 12 participants"):
        local_suppression(people, 13)


def _people(groups: list[tuple[int, tuple[str, str, str, str]]]) -> pd.DataFrame:
    rows = [values for size, values in groups for _ in range(size)]
    frame = pd.DataFrame(rows, columns=list(QUASI_IDENTIFIERS))
    return frame.assign(participant_key=[f"P{i:03d}" for i in range(len(frame))])


def test_completely_suppressed_participants_too_few_for_k_are_joined_by_a_large_group():
    """Two participants unique on every quasi-identifier end with everything suppressed, a group
    of 2: three members of the group of 15 are suppressed completely to bring it to 5 (a
    500-school study stopped here with StopIteration before)."""
    people = _people([(15, ("A", "deputy", "0-2", "program")), (1, ("B", "director", "21+", "comparison")),
                      (1, ("C", "head", "6-10", "other"))])
    suppressed, counts = local_suppression(people, 5)
    assert smallest_group(suppressed) == 5
    assert len(suppressed) == len(people) and counts["records_removed"] == 0
    complete = (suppressed[list(QUASI_IDENTIFIERS)] == "*").all(axis=1)
    assert sorted(suppressed.loc[complete, "participant_key"]) == ["P012", "P013", "P014", "P015", "P016"]


def test_records_are_removed_only_when_no_group_can_spare_members():
    people = _people([(5, ("A", "deputy", "0-2", "program")), (1, ("B", "director", "21+", "comparison")),
                      (1, ("C", "head", "6-10", "other"))])
    suppressed, counts = local_suppression(people, 5)
    assert counts["records_removed"] == 2 and len(suppressed) == 5
    assert smallest_group(suppressed) == 5


def test_rare_wave_patterns_merge_into_common_ones_before_anyone_is_dropped():
    patterns = pd.Series(["pre+post"] * 10 + ["post+followup"] * 4 + ["post"] * 3 + ["followup"] * 2,
                         index=[f"P{i:02d}" for i in range(19)])
    merged = merge_rare_patterns(patterns, 5)
    # post+followup (4) leaves out its follow-up rows and joins "post" (3): 7, kept whole;
    # the two follow-up-only participants cannot be joined to anything and are left out.
    assert merged.value_counts().to_dict() == {"pre+post": 10, "post": 7, "": 2}


def _responses(rows):
    """Item responses: rows of (key, institution, role, years, cohort, waves answered)."""
    out = []
    for key, institution, role, years, cohort, waves in rows:
        for wave in waves:
            out.append({"participant_key": key, "institution": institution, "role": role,
                        "years_in_management": years, "cohort": cohort, "wave": wave, "domain": "universal",
                        "item": "u1", "value": 3, "careless": False})
    return pd.DataFrame(out)


def test_open_responses_are_k_anonymous_within_each_wave_and_wave_pattern():
    """Over all rows the six programme deputies of school A form one group of 6; but only two of
    them answered the follow-up, so the follow-up rows alone would single them out."""
    rows = ([(f"A{i}", "A", "deputy", 3, "program", ("pre", "post")) for i in range(4)]
            + [(f"F{i}", "A", "deputy", 3, "program", ("pre", "post", "followup")) for i in range(2)]
            + [(f"B{i}", "B", "director", 12, "comparison", ("pre", "post", "followup")) for i in range(6)])
    responses = _responses(rows)
    naive = responses.drop_duplicates("participant_key")
    assert naive.groupby(["institution", "role", "cohort"]).size().min() == 6
    table, counts, achieved = open_responses(responses, 5)
    assert min(achieved.values()) >= 5, achieved
    assert achieved == achieved_k(table)
    follow = table[table["wave"] == "followup"].drop_duplicates("participant")
    assert follow.groupby(list(QUASI_IDENTIFIERS)).size().min() >= 5
    assert counts["rows_dropped"] + len(table) == len(responses)

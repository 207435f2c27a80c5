"""Disclosure control of the data packages, checked from the unpacked packages alone."""

import re
import zipfile

import pandas as pd
import pytest
import yaml

from dpo_eval.package import QUASI_IDENTIFIERS, local_suppression, smallest_group


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
    smallest = int(people.groupby(list(QUASI_IDENTIFIERS)).size().min())
    assert smallest >= min_cell
    readme = (root / "OPEN_DATA.md").read_text(encoding="utf-8")
    assert f"has {smallest} participants (k = {smallest};" in readme
    assert set(people["years_band"]) <= {"0-2", "3-5", "6-10", "11-20", "21+", "unknown", "*"}
    # Nothing but the quasi-identifiers was touched: the answers are the analysis data's.
    clean = pd.read_csv(demo_run / "results" / "clean" / "responses.csv")
    assert len(responses) == len(clean) and responses["value"].astype(int).sum() == clean["value"].sum()


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

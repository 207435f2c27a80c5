"""Participant codes: normalisation and near-miss matching."""

import pandas as pd
import pytest

from dpo_eval.codes import edit_distance_at_most_one, normalise_code, resolve_near_misses


@pytest.mark.parametrize("typed", ["КМ-022-01", "км-022-01", " КМ 022 01 ", "KM-022-01", "kм022–01"])
def test_normalisation_folds_case_spaces_dashes_and_lookalikes(typed):
    assert normalise_code(typed) == "КМ02201"


@pytest.mark.parametrize("a,b,expected", [("АБ123", "АБ124", True), ("АБ123", "АБ13", True),
                                          ("АБ123", "АБ1234", True), ("АБ123", "АБ153", True),
                                          ("АБ123", "АБ456", False), ("АБ123", "АБ123", True),
                                          ("АБ12", "АБ1234", False)])
def test_edit_distance(a, b, expected):
    assert edit_distance_at_most_one(a, b) is expected


def codes(rows):
    return pd.DataFrame([{"institution": i, "wave": w, "code": c,
                          "identity": frozenset(ident)} for i, w, c, ident in rows])


def test_typo_is_matched_and_audited():
    audit = resolve_near_misses(codes([
        ("S1", "pre", "ХБ00101", {("email", "a@x.example")}),
        ("S1", "pre", "ХБ00102", {("email", "b@x.example")}),
        ("S1", "post", "ХБ00102", {("full_name", "b")}),
        ("S1", "post", "ХБ00191", {("email", "a@x.example")}),
    ]))
    assert audit[["typed_code", "matched_code", "status"]].values.tolist() == [["ХБ00191", "ХБ00101", "matched"]]


def test_teammates_who_left_and_joined_are_not_joined():
    # One teammate answered only at entry, another only at exit; their codes are one edit apart.
    audit = resolve_near_misses(codes([
        ("S1", "pre", "ХБ00101", {("full_name", "иванова анна")}),
        ("S1", "post", "ХБ00102", {("full_name", "петрова ольга")}),
    ]))
    assert audit["status"].tolist() == ["rejected"]


def test_codes_of_other_institutions_are_never_matched():
    audit = resolve_near_misses(codes([("S1", "pre", "ХБ00101", set()),
                                       ("S2", "post", "ХБ00191", set())]))
    assert audit.empty


def test_several_candidates_are_left_unmatched():
    audit = resolve_near_misses(codes([
        ("S1", "pre", "ХБ00101", set()), ("S1", "pre", "ХБ00103", set()),
        ("S1", "post", "ХБ00102", set()),
    ]))
    assert audit["status"].tolist() == ["ambiguous"]
    assert audit["matched_code"].tolist() == ["ХБ00101|ХБ00103"]

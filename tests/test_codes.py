"""Participant codes: normalisation and near-miss matching."""

import pandas as pd
import pytest

from dpo_eval.ingest.codes import (edit_distance_at_most_one, neighbour_pairs, normalise_code,
                            resolve_near_misses, restore_leading_zeros, undo_excel_text)


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


def test_two_codes_claiming_one_target_are_both_left_unmatched():
    # АБ101 and АБ200 (post) are each one edit from АБ100 (pre) and have no other neighbour:
    # matching both would merge two people into one; neither is matched.
    audit = resolve_near_misses(codes([
        ("S1", "pre", "АБ100", set()),
        ("S1", "post", "АБ101", set()),
        ("S1", "post", "АБ200", set()),
    ]))
    assert audit[["typed_code", "matched_code", "status"]].values.tolist() == [
        ["АБ101", "АБ100", "ambiguous"], ["АБ200", "АБ100", "ambiguous"]]
    assert "left unmatched" in audit["evidence"].iloc[0]


def test_a_code_between_two_targets_is_left_unmatched():
    # АБ102 (post) is one edit from АБ101 and АБ112 (pre), whose teammate АБ111 makes them
    # codes with several neighbours: which one its owner meant is unknown.
    audit = resolve_near_misses(codes([
        ("S1", "pre", "АБ101", set()), ("S1", "pre", "АБ111", set()),
        ("S1", "pre", "АБ112", set()), ("S1", "post", "АБ102", set()),
    ]))
    assert audit[["typed_code", "matched_code", "status"]].values.tolist() == [
        ["АБ102", "АБ101|АБ112", "ambiguous"]]
    # Without the teammate each pre code has АБ102 as its only neighbour: both would claim it,
    # so neither is matched (before one-to-one matching both were merged into АБ102).
    audit = resolve_near_misses(codes([
        ("S1", "pre", "АБ101", set()), ("S1", "pre", "АБ112", set()),
        ("S1", "post", "АБ102", set()),
    ]))
    assert audit["status"].tolist() == ["ambiguous", "ambiguous"]
    assert audit["matched_code"].tolist() == ["АБ102", "АБ102"]


def test_one_to_one_claim_confirmed_by_identity_is_still_not_a_merge():
    # Even a name shared with the target does not make two claims one-to-one.
    audit = resolve_near_misses(codes([
        ("S1", "pre", "АБ100", {("full_name", "a")}),
        ("S1", "post", "АБ101", {("full_name", "a")}),
        ("S1", "followup", "АБ200", set()),
    ]))
    assert set(audit["status"]) == {"ambiguous"}


def test_neighbours_found_by_the_deletion_join_equal_the_pairwise_rule():
    import itertools
    import random

    rng = random.Random(3)
    alphabet = "АБ012"
    typed = {"".join(rng.choice(alphabet) for _ in range(rng.randint(2, 5))) for _ in range(300)}
    frame = pd.DataFrame({"institution": "S1", "wave": "pre", "code": sorted(typed)})
    found = set(zip(*[neighbour_pairs(frame)[c] for c in ("code", "other")]))
    expected = {(a, b) for a, b in itertools.permutations(sorted(typed), 2)
                if edit_distance_at_most_one(a, b)}
    assert found == expected


@pytest.mark.parametrize("cell,text,fix", [("'0100102", "0100102", "apostrophe"),
                                           ("100102.0", "100102", "decimals"),
                                           ("’КМ-022-01", "КМ-022-01", "apostrophe"),
                                           ("КМ-022-01", "КМ-022-01", ""),
                                           ("1.5", "1.5", "")])
def test_what_a_spreadsheet_adds_to_a_code_is_undone(cell, text, fix):
    assert undo_excel_text(cell) == (text, fix)


def test_lost_leading_zeros_are_restored_from_the_format_or_the_other_waves():
    frame = pd.DataFrame({"institution": ["S1", "S1", "S1", "S2", "S2"],
                          "code": ["0100102", "100102", "100103", "0012", "12"]})
    by_format = restore_leading_zeros(frame, {"pattern": r"\d{7}"})
    assert by_format.fillna("-").tolist()[:3] == ["-", "0100102", "0100103"]
    by_evidence = restore_leading_zeros(frame, None).fillna("-").tolist()
    # 100103 has no zero-padded twin at its institution, and the zero-padded codes have two
    # widths (7 and 4): nothing to restore it from.
    assert by_evidence == ["-", "0100102", "-", "-", "0012"]
    one_width = frame.iloc[:3]
    assert restore_leading_zeros(one_width, None).fillna("-").tolist() == ["-", "0100102", "0100103"]

"""The inferences of `dpo-eval draft-codebook` (dpo_eval.cli.inference): correlations, principal
components, varimax and parallel analysis against R and psych (tests/reference/
drafting_reference.R, on psych's Big Five inventory), domains and reverse keys of a known
instrument, scales from labels, and the parts of a matrix question's header."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from dpo_eval.cli import inference

REFERENCE = REPO / "tests" / "reference"


@pytest.fixture(scope="module")
def bfi() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "bfi_ac.csv")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "drafting_reference.csv")


def matrix(reference: pd.DataFrame, quantity: str) -> np.ndarray:
    rows = reference[reference["quantity"] == quantity]
    out = np.zeros((rows["i"].max(), rows["j"].max()))
    out[rows["i"] - 1, rows["j"] - 1] = rows["value"]
    return out


def test_correlations_and_varimax_agree_with_r(bfi, reference):
    corr, n = inference.pooled_correlation([bfi], list(bfi.columns))
    assert n == len(bfi)
    np.testing.assert_allclose(corr, matrix(reference, "correlation"), atol=1e-12)
    rotated = inference.varimax(matrix(reference, "loading"))
    expected = matrix(reference, "varimax")
    # A rotation is unique up to the order and signs of its columns.
    for column in expected.T:
        best = max(rotated.T, key=lambda c: abs(c @ column))
        np.testing.assert_allclose(best * np.sign(best @ column), column, atol=1e-6)


def test_parallel_analysis_keeps_as_many_components_as_psych(bfi, reference):
    corr, n = inference.pooled_correlation([bfi], list(bfi.columns))
    expected = int(reference.loc[reference["quantity"] == "parallel_ncomp", "value"].iloc[0])
    assert inference.parallel_analysis(corr, n) == expected == 2
    assert inference.parallel_analysis(corr[:5, :5], n) == 1


def test_domains_and_reverse_keys_of_the_big_five_items(bfi):
    """Agreeableness and conscientiousness come apart, and the items psych's bfi.keys score in
    reverse (A1, C4, C5) are the ones found reverse-keyed."""
    corr, n = inference.pooled_correlation([bfi], list(bfi.columns))
    guess = inference.suggest_domains(corr, n)
    assert guess.groups == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert [c for c, r in zip(bfi.columns, guess.reverse) if r] == ["A1", "C4", "C5"]
    assert all(guess.item_rest[i] < 0 for i in (0, 8, 9))


def test_scales_are_ordered_by_the_known_labels_whatever_their_spelling():
    cells = pd.Series(["скорее  согласна ", "Полностью не согласен", "В чем-то согласна, в чем-то нет",
                       "", "Скорее не согласен", "ПОЛНОСТЬЮ СОГЛАСЕН", "3", "0"])
    guess = inference.infer_scale(cells, frozenset({""}))
    assert guess.name == "agree5"
    assert [guess.definition[v]["ru"] for v in range(1, 6)] == [
        "Полностью не согласен", "Скорее не согласен", "В чём-то согласен, в чём-то нет",
        "Скорее согласен", "Полностью согласен"]
    assert "numbers outside 1..5 also found: [0]" in guess.note
    seven = inference.infer_scale(pd.Series(["Согласен", "Совершенно согласна", "Не согласен"]),
                                  frozenset())
    assert seven.name == "agree7" and seven.lookup["совершенно согласна"] == 7
    english = inference.infer_scale(pd.Series(["Strongly agree", "Disagree"]), frozenset())
    assert english.name == "agree4" and english.definition[4]["en"] == "Strongly agree"
    numbers = inference.infer_scale(pd.Series(["1", "2", "7", "6", "6"] * 50 + ["55"]), frozenset())
    assert numbers.name == "numeric7" and list(numbers.definition) == list(range(1, 8))
    unknown = inference.infer_scale(pd.Series(["мало", "много", "мало"]), frozenset())
    assert unknown.name == "scale_unknown" and "PUT THEM IN ORDER" in unknown.note


def test_headers_are_split_into_matrix_question_and_statement():
    assert inference.split_header("Оцените себя [Я умею планировать]") == ("Оцените себя", "Я умею планировать")
    assert inference.split_header("Оцените себя сейчас / Я умею планировать") == (
        "Оцените себя сейчас", "Я умею планировать")
    assert inference.split_header("Я умею  планировать") == (None, "Я умею планировать")
    assert inference.retrospective_marker("Как бы вы оценили себя ДО НАЧАЛА ОБУЧЕНИЯ? / Я") == "до начала обучения"
    assert inference.retrospective_marker("Оцените себя сейчас / Я умею планировать") is None


def test_exports_are_recognised_and_the_rating_sheet_chosen():
    from dpo_eval.cli.drafting import read_exports, template_fields
    from dpo_eval.core.text import fold

    template = template_fields()
    missing = frozenset(fold(code) for code in template["missing_codes"])
    raw = REPO / "data" / "raw"
    exports = read_exports(sorted(raw.iterdir()), template["fields"], missing)
    kinds = {e.path.name: (e.kind, e.sheet) for e in exports}
    assert kinds == {"followup_excel_ru.csv": ("wave", None), "institutions.csv": ("registry", None),
                     "needs_assessment_google.csv": ("needs", None),
                     "post_exit_yandex.xlsx": ("wave", "Ответы"), "pre_entry_google.csv": ("wave", None)}
    post = next(e for e in exports if e.kind == "wave" and e.sheet)
    assert sum(r.retrospective == "до начала обучения" for r in post.ratings) == 18
    assert post.ignored == ["ID"]

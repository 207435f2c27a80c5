"""Locale formatting and the wording of the verdict."""

import pandas as pd
import pytest

from dpo_eval.report import format_ci, format_number, format_p, load_strings, verdict
from conftest import REPO

NAMES = {"universal": "U", "professional": "P", "subject_methodical": "S"}


@pytest.mark.parametrize("value,lang,expected", [(0.3256, "ru", "0,33"), (0.3256, "en", "0.33"),
                                                 (-0.004, "ru", "0,00"), (-1.5, "en", "-1.50")])
def test_format_number(value, lang, expected):
    assert format_number(value, lang) == expected


def test_missing_number_is_an_error():
    with pytest.raises(ValueError, match="missing number"):
        format_number(float("nan"), "ru")


@pytest.mark.parametrize("p,lang,expected", [(0.00001, "ru", "p < 0,001"), (0.0234, "ru", "p = 0,023"),
                                             (0.5, "en", "p = 0.500"), (0.0009, "en", "p < 0.001")])
def test_format_p(p, lang, expected):
    assert format_p(p, lang) == expected


def test_format_ci():
    assert format_ci(0.11, 0.41, "ru") == "[0,11; 0,41]"
    assert format_ci(0.11, 0.41, "en") == "[0.11, 0.41]"


def did(estimates, p_holm):
    return pd.DataFrame({"domain": list(NAMES), "estimate": estimates, "conf_low": [e - 0.1 for e in estimates],
                         "conf_high": [e + 0.1 for e in estimates], "p_holm": p_holm})


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_verdict_follows_the_results(lang):
    strings = load_strings(REPO / "reports" / "i18n", lang)
    text, lines = verdict(did([0.3, 0.4, 0.2], [0.001, 0.001, 0.01]), strings, NAMES, lang)
    assert text == strings["verdict_supported"]
    text, lines = verdict(did([0.3, 0.05, 0.2], [0.001, 0.4, 0.01]), strings, NAMES, lang)
    assert text == strings["verdict_partial"]
    assert lines[1] == strings["domain_not_significant"].format(
        domain="P", estimate=format_number(0.05, lang), low=format_number(-0.05, lang),
        high=format_number(0.15, lang), p=format_p(0.4, lang))
    text, lines = verdict(did([-0.3, 0.05, 0.02], [0.001, 0.4, 0.6]), strings, NAMES, lang)
    assert text.startswith(strings["verdict_not_supported"])
    assert strings["verdict_opposite"].format(domain="U") in text
    assert format_number(0.3, lang) in lines[0]

"""The typesetting pass (dpo_eval.reporting.typography.typeset / typeset_html): each rule of Russian
(and English) typesetting, table-driven, with the examples the reports really print."""

from __future__ import annotations

import pytest

from dpo_eval.reporting.typography import FirstUse, percent, quotes, typeset, typeset_html, typesetting_rules

S = "\u00a0"   # no-break space
N = "\u202f"   # narrow no-break space
M = "\u2212"   # minus sign

CASES = [
    # (rule, lang, text as written, text as set)
    ("short_word", "ru", "прирост больше на 0,33 балла", f"прирост больше на{S}0,33{S}балла"),
    ("short_word", "ru", "по Саттертуэйту", f"по{S}Саттертуэйту"),
    ("short_word", "ru", "сотрудничество с вузом", f"сотрудничество с{S}вузом"),
    ("short_word", "ru", "и в школе, и в ИРО", f"и{S}в{S}школе, и{S}в{S}ИРО"),
    ("short_word", "ru", "В группе программы", f"В{S}группе программы"),
    ("short_word", "ru", "для школ без методиста", f"для{S}школ без{S}методиста"),
    ("short_word", "ru", "слово\nв начале строки", f"слово\nв{S}начале строки"),
    ("short_word", "ru", "ДИ-в тексте", "ДИ-в тексте"),  # part of a hyphenated word, not a preposition
    ("enclitic", "ru", "если бы не так же", f"если{S}бы не{S}так{S}же"),
    ("number_unit", "ru", "5 участников и 12 школ", f"5{S}участников и{S}12{S}школ"),
    ("number_unit", "ru", "0,023 и 0,041", f"0,023 и{S}0,041"),  # a number may break before "и"
    ("number_unit", "en", "251 participants", f"251{S}participants"),
    ("numbered", "ru", "см. Таблица 3 и рисунок 2", f"см.{S}Таблица{S}3 и{S}рисунок{S}2"),
    ("dotted", "ru", "школы «г. Хабаровск» и района им. Лазо", f"школы «г.{S}Хабаровск» и{S}района им.{S}Лазо"),
    ("dotted", "ru", "т. е. так", f"т.{S}е.{S}так"),
    ("numbered", "en", "see Table 3 and Figure 2", f"see Table{S}3 and Figure{S}2"),
    ("relation", "ru", "p = 0,023", f"p{S}={S}0,023"),
    ("relation", "ru", "p < 0,001", f"p{S}<{S}0,001"),
    ("relation", "en", "n = 250, d ≈ 0.31", f"n{S}={S}250, d{S}≈{S}0.31"),
    ("relation", "ru", "a = b", "a = b"),  # only a relation to a number
    ("interval", "ru", f"[{M}0,37; {M}0,20]", f"[{M}0,37;{S}{M}0,20]"),
    ("interval", "ru", "ДИ 0,07; 0,93", f"ДИ 0,07;{S}0,93"),
    ("interval", "en", "[0.20, 0.45]", f"[0.20,{S}0.45]"),
    ("interval", "en", "1.2, 3.4 and 5.6", "1.2, 3.4 and 5.6"),  # a list, not an interval
    ("percent", "ru", "95% ДИ", f"95{N}% ДИ"),
    ("percent", "ru", "46 % школ", f"46{N}% школ"),
    ("percent", "en", "46 % of schools", "46% of schools"),
    ("range_dash", "ru", "шкала 1-5", "шкала 1\u20135"),
    ("range_dash", "ru", "от 0,20-0,45", f"от{S}0,20\u20130,45"),
    ("range_dash", "en", "2026-04-01", "2026-04-01"),  # an ISO date stays
    ("range_dash", "ru", "+7 (4217) 00-00-00", "+7 (4217) 00-00-00"),  # so does a phone number
    ("minus", "ru", "оценка -0,25", f"оценка {M}0,25"),
    ("abbreviation", "ru", "курс ХК ИРО и АмГПГУ", f"курс ХК{S}ИРО и{S}АмГПГУ"),
    ("abbreviation", "en", "the KhK IRO course", f"the KhK{S}IRO course"),
    ("abbreviation", "ru", "ДИ Фельдта", "ДИ Фельдта"),
    ("dash", "ru", "волна 1 — входная", f"волна{S}1{S}\u2014 входная"),
    ("quotes", "ru", 'направление "Управление"', "направление «Управление»"),
    ("quotes", "ru", "“Управление”", "«Управление»"),
    ("quotes", "ru", 'курс "Школа "Лидер" 2.0"', "курс «Школа „Лидер“ 2.0»"),
    ("quotes", "en", 'area "Management"', "area \u201cManagement\u201d"),
    ("quotes", "en", "area «Management»", "area \u201cManagement\u201d"),
    ("quotes", "en", 'the "school "Leader" course"', "the \u201cschool \u2018Leader\u2019 course\u201d"),
]


@pytest.mark.parametrize("rule,lang,text,expected", CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_typesetting_rule(rule, lang, text, expected):
    assert typeset(text, lang) == expected


def test_every_rule_has_a_case():
    names = {name for lang in ("ru", "en") for name, _, _ in typesetting_rules(lang)} | {"quotes"}
    assert names <= {case[0] for case in CASES} | {"interval_open"}


def test_setting_twice_changes_nothing():
    for _, lang, text, expected in CASES:
        assert typeset(expected, lang) == expected, text


def test_one_percent_rule():
    assert percent("46", "ru") == f"46{N}%" and percent("46", "en") == "46%"
    assert typeset(percent("46", "ru"), "ru") == percent("46", "ru")


def test_quotes_carry_their_depth_across_text_nodes():
    first, depth = quotes('начало "цитаты', "ru")
    second, depth = quotes(' конец" текста', "ru", depth)
    assert first + second == "начало «цитаты конец» текста" and depth == 0


TERMS_RU = {"ДПО": "дополнительное профессиональное образование", "ДИ": "доверительный интервал"}
TERMS_EN = {"DPO": "additional professional education", "KhK IRO": "Khabarovsk Krai Institute of Educational Development"}


def test_abbreviations_are_expanded_at_their_first_use_only():
    expand = FirstUse(TERMS_RU, "ru")
    assert expand("Программа ДПО для команд") == "Программа ДПО (дополнительное профессиональное образование) для команд"
    assert expand("Слушатели ДПО") == "Слушатели ДПО"
    english = FirstUse(TERMS_EN, "en")
    assert english("The DPO program of KhK IRO.") == ("The additional professional education (DPO) program of "
                                                       "Khabarovsk Krai Institute of Educational Development (KhK IRO).")


def test_an_abbreviation_of_several_words_is_found_after_typesetting():
    text = typeset_html("<p>The KhK IRO course and the IRO.</p>", "en", {**TERMS_EN, "IRO": "regional institute"})
    assert text == (f"<p>The Khabarovsk Krai Institute of Educational Development (KhK{S}IRO) course and "
                    "the regional institute (IRO).</p>")


def test_an_abbreviation_introduced_by_the_text_is_not_expanded_again():
    expand = FirstUse(TERMS_RU, "ru")
    assert expand("доверительный интервал (ДИ) равен") == "доверительный интервал (ДИ) равен"
    assert expand("95 % ДИ") == "95 % ДИ"


def test_typeset_html_sets_prose_and_leaves_markup_and_literals():
    markup = ('<html lang="ru"><head><style>p { content: "a - b"; }</style></head><body>'
              '<h1>Отчёт о программе ДПО</h1>'
              '<p class="intro">Программа ДПО и в школе: 95% ДИ [0,07; 0,93], p = 0,02 &amp; "итог"</p>'
              '<img src="x.svg" alt="в школе"><table><tr><td class="literal">{"min_cell": 5} - в</td>'
              '<td>шкала 1-5</td></tr></table></body></html>')
    out = typeset_html(markup, "ru", TERMS_RU)
    assert '<style>p { content: "a - b"; }</style>' in out
    assert f"<h1>Отчёт о{S}программе ДПО</h1>" in out  # headings: set, but no expansion
    assert (f'<p class="intro">Программа ДПО (дополнительное профессиональное образование) и{S}в{S}школе: '
            f'95{N}% ДИ (доверительный интервал) [0,07;{S}0,93], p{S}={S}0,02 &amp; «итог»</p>') in out
    assert 'alt="в школе"' in out
    assert '<td class="literal">{"min_cell": 5} - в</td>' in out
    assert "<td>шкала 1\u20135</td>" in out


def test_typeset_html_is_idempotent():
    markup = '<p>Программа ДПО и в школе: 95% ДИ [0,07; 0,93] "итог"</p>'
    once = typeset_html(markup, "ru", TERMS_RU)
    assert typeset_html(once, "ru", TERMS_RU) == once


def test_a_line_break_of_a_figure_label_stays_a_line_break():
    assert typeset("анкет 121\nучастников 118 и в", "ru") == f"анкет 121\nучастников 118 и{S}в"
    assert typeset("в\nшколе", "ru") == "в\nшколе"

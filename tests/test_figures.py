"""Figures of the evaluation report: text kept as text in the reports' font, at print size (no
text under 8 pt, never wider than the text), byte-reproducible, colours with one meaning, forest
plots grouped by domain, every axis titled. (The school reports' charts: test_school_charts.)"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from dpo_eval.reporting import figures
from dpo_eval.reporting.accessibility import DocumentInfo, write_pdf
from dpo_eval.reporting.figures import COLOURS, LIKERT_COLOURS, MIN_FONT_PT

from conftest import REPO

TEXT_WIDTH_PT = (210 - 2 * 18) / 25.4 * 72  # A4 minus the reports' side margins (base.html)

DOMAINS = {"universal": "Универсальные компетенции", "professional": "Профессиональные компетенции"}
WAVES = {"pre": "входная", "post": "выходная", "followup": "отсроченная"}
COHORTS = {"program": "программа", "comparison": "сравнение"}


def forest_rows() -> pd.DataFrame:
    rows = []
    for domain, name in DOMAINS.items():
        for i, analysis in enumerate(["Основной анализ", "Без невнимательных респондентов", "Только завершившие"]):
            rows.append({"domain": name, "label": analysis, "estimate": 0.3 - 0.1 * i, "conf_low": 0.1 - 0.1 * i,
                         "conf_high": 0.5 - 0.1 * i})
    return pd.DataFrame(rows)


def descriptives() -> pd.DataFrame:
    return pd.DataFrame([{"domain": d, "cohort": c, "wave": w, "mean": 3 + 0.1 * i, "sd": 0.5, "n": 40}
                         for d in DOMAINS for c in COHORTS for i, w in enumerate(WAVES)])


def qq() -> pd.DataFrame:
    points = [-1.5, -0.5, 0.0, 0.5, 1.5]
    return pd.DataFrame([{"domain": d, "kind": k, "theoretical": p, "sample": 1.1 * p}
                         for d in DOMAINS for k in ("residual", "institution") for p in points])


def flow() -> pd.DataFrame:
    return pd.DataFrame([{"wave": w, "cohort": c, "received": 50, "duplicates": 2, "participants": 48,
                          "unmatched": 1, "careless": 1, "excluded": 0, "analysed": 47} for w in WAVES for c in COHORTS])


FLOW_WORDS = {k: k for k in ("received", "duplicates", "participants", "unmatched", "careless", "analysed")}


def all_figures() -> dict[str, str]:
    likert = pd.DataFrame([{"stakeholder": "school", "area": a, "value": v, "share": 0.2}
                           for a in ("a1", "a2") for v in range(1, 6)])
    return {
        "forest": figures.forest_plot(forest_rows(), "label", "нет различий", "Разность разностей, баллы", "ru",
                                      group_column="domain", y_label="Анализ"),
        "means": figures.means_plot(descriptives(), DOMAINS, WAVES, COHORTS, "Средний балл (1–5)", "ru",
                                    x_label="Волна"),
        "likert": figures.diverging_likert(likert, {"a1": "Управление изменениями", "a2": "Наставничество"},
                                           {"school": "Школы"}, ["1", "2", "3", "4", "5"], "ru",
                                           x_label="Доля ответов"),
        "qq": figures.qq_plots(qq(), DOMAINS, {"residual": "остатки", "institution": "организации"}, "ru",
                               x_label="Теоретические квантили", y_label="Выборочные квантили"),
        "flow": figures.flow_diagram(flow(), WAVES, COHORTS, FLOW_WORDS, "ru"),
    }


@pytest.fixture(scope="module")
def svgs() -> dict[str, str]:
    return all_figures()


def texts(svg: str) -> list[tuple[str, str]]:
    """(style, text) of every text element of an SVG."""
    return re.findall(r'<text[^>]*style="([^"]*)"[^>]*>([^<]*)</text>', svg)


def test_figure_text_is_text_in_the_shipped_font_at_8_pt_or_more(svgs):
    for name, svg in svgs.items():
        found = texts(svg)
        assert found, name
        assert "<path id=\"DejaVuSans" not in svg, f"{name}: glyphs drawn as outlines"
        for style, text in found:
            assert f"font-family: '{figures.FONT_FAMILY}'" in style, (name, text, style)
            size = float(re.search(r"font-size: ([\d.]+)px", style).group(1))
            assert size >= MIN_FONT_PT, (name, text, size)
        width = float(re.search(r'<svg[^>]*width="([\d.]+)pt"', svg).group(1))
        assert width <= TEXT_WIDTH_PT, (name, width)


def test_figures_are_byte_reproducible(svgs):
    assert all_figures() == svgs


def test_every_axis_is_titled(svgs):
    words = {"forest": ["Разность разностей, баллы", "Анализ"], "means": ["Средний балл (1–5)", "Волна"],
             "likert": ["Доля ответов"], "qq": ["Теоретические квантили", "Выборочные квантили"]}
    for name, titles in words.items():
        shown = {text.replace("\u00a0", " ") for _, text in texts(svgs[name])}
        for title in titles:
            assert title in shown, (name, title)


def test_forest_plot_groups_rows_under_bold_domain_headings(svgs):
    found = texts(svgs["forest"])
    labels = [text for _, text in found]
    for domain in DOMAINS.values():
        style = next(style for style, text in found if text == domain)
        assert "font-weight: 700" in style
    first, second = (labels.index(d) for d in DOMAINS.values())
    # Headings, then their three analyses each: the labels are drawn from the top row down.
    assert labels.count("Основной анализ") == 2 and first < second


def test_colours_have_one_meaning_and_stay_apart_in_greyscale(svgs):
    used = {c.upper() for svg in svgs.values() for c in re.findall(r"#[0-9A-Fa-f]{6}", svg)}
    meaningful = {c.upper() for c in [*COLOURS.values(), *LIKERT_COLOURS]}
    neutral = {"#000000", "#FFFFFF", "#111111", "#333333", "#444444", "#666666", "#E0E0E0", "#F2F2F2"}
    assert used <= meaningful | neutral, used - meaningful - neutral

    def lightness(colour: str) -> float:
        r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    for a, b in (("program", "comparison"), ("own", "region")):
        assert abs(lightness(COLOURS[a]) - lightness(COLOURS[b])) > 0.1, (a, b)
    # The reports' style sheet draws with the same meanings.
    css = (REPO / "reports" / "templates" / "base.html").read_text(encoding="utf-8")
    assert figures.OKABE_ITO["orange"] not in css.upper() and "#E69F00" not in css.upper()


@pytest.mark.requires_tool("pdftotext")
def test_figure_words_can_be_found_in_the_pdf_and_the_pdf_is_reproducible(svgs):
    from weasyprint import HTML

    from dpo_eval.reporting.report_figures import svg_uri as svg_image

    body = "".join(f'<figure><img src="{svg_image(svg)}" alt="{name}"></figure>' for name, svg in svgs.items())
    html = (f'<html lang="ru"><head><style>@font-face {{ font-family: "{figures.FONT_FAMILY}"; '
            'src: url("../fonts/DejaVuSans.ttf"); } @font-face { font-family: "Report Sans"; font-weight: bold; '
            'src: url("../fonts/DejaVuSans-Bold.ttf"); } img { max-width: 100%; }</style></head>'
            f"<body>{body}</body></html>")
    base = str(REPO / "reports" / "templates")
    info = DocumentInfo("Рисунки", "ru", ("АмГПГУ",))
    pdfs = [write_pdf(HTML(string=html, base_url=base), info, b"figures") for _ in range(2)]
    assert pdfs[0] == pdfs[1]
    text = subprocess.run([shutil.which("pdftotext"), "-", "-"], input=pdfs[0], capture_output=True,
                          check=True).stdout.decode("utf-8")
    for label in ("Без невнимательных респондентов", "Теоретические квантили", "Управление изменениями",
                  "Средний балл (1–5)"):
        assert label in text.replace("\u00a0", " "), label


def test_qq_panels_draw_a_bounded_number_of_points_with_both_tails_whole():
    """A Q-Q panel of a national study (tens of thousands of residuals) draws at most
    QQ_MAX_POINTS points: the tails whole, evenly spaced ranks between; a small panel all of its
    points in the table's order (the demo's figures keep their bytes)."""
    rng = np.random.default_rng(3)
    sample = np.sort(rng.normal(size=20_000))
    theoretical = np.sort(rng.normal(size=20_000))
    rows = pd.DataFrame({"theoretical": theoretical, "sample": sample}).sample(frac=1, random_state=1)
    drawn = figures.thinned_quantiles(rows)
    assert len(drawn) <= figures.QQ_MAX_POINTS
    assert drawn["theoretical"].is_monotonic_increasing
    tail = figures.QQ_TAIL_POINTS
    assert drawn["theoretical"].iloc[:tail].tolist() == theoretical[:tail].tolist()
    assert drawn["theoretical"].iloc[-tail:].tolist() == theoretical[-tail:].tolist()
    # Evenly spaced ranks in between: no gap wider than twice the even spacing.
    ranks = np.searchsorted(theoretical, drawn["theoretical"].to_numpy())
    assert np.diff(ranks).max() <= 2 * len(rows) / (figures.QQ_MAX_POINTS - 2 * tail)
    small = rows.iloc[:300]
    assert figures.thinned_quantiles(small) is small
    big = pd.DataFrame({"domain": "universal", "kind": "residual", "theoretical": theoretical, "sample": sample})
    svg = figures.qq_plots(big, {"universal": "У"}, {"residual": "остатки"}, "ru")
    assert figures.QQ_MAX_POINTS - 2 * tail <= svg.count("<use ") <= figures.QQ_MAX_POINTS + 50

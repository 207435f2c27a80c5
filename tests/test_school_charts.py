"""The school reports' charts (HTML text over a background of shapes): every word is text in the
reports' font at 8 pt or more, the chart fits the text width, its bytes depend only on the data,
its colours keep their meaning, every axis is titled, one score axis serves every school of a
study, and in the PDF the chart is one tagged figure with its alternative text and words that
can be found."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess

import pikepdf
import pytest

from dpo_eval.reporting import school_charts
from dpo_eval.reporting.accessibility import DocumentInfo
from dpo_eval.reporting.figures import COLOURS, MIN_FONT_PT, score_axis
from dpo_eval.reporting.layout import render_report

from conftest import REPO

TEXT_WIDTH_PT = (210 - 2 * 18) / 25.4 * 72  # A4 minus the reports' side margins (base.html)
DOMAINS = {"universal": "Универсальные компетенции", "professional": "Профессиональные компетенции"}
PROFILE = [{"kind": "own", "domain": "universal", "pre": 3.1, "post": 3.6},
           {"kind": "region", "domain": "universal", "pre": 3.2, "post": 3.4},
           {"kind": "region", "domain": "professional", "pre": 2.9, "post": 3.0}]
PROFILE_NAMES = {"own": "Ваша команда", "region": "Все школы края", "pre": "вход", "post": "выход",
                 "x_label": "Средний балл (1–5)", "y_label": "Группа компетенций"}
PARTICIPATION = [{"wave": "Входная", "n": 6, "region_mean": 4.2}, {"wave": "Выходная", "n": 0, "region_mean": 3.9}]
PARTICIPATION_NAMES = {"own": "Ваша команда", "region": "Среднее по школам края", "x_label": "Участников",
                       "y_label": "Волна"}
NEUTRAL = {"#FFFFFF", "#333333", "#E0E0E0"}


def charts() -> dict[str, str]:
    return {"profile": school_charts.profile_chart(PROFILE, DOMAINS, score_axis(), PROFILE_NAMES, "ru", "профиль"),
            "participation": school_charts.participation_chart(PARTICIPATION, PARTICIPATION_NAMES, "ru", "участие")}


def words(chart: str) -> list[str]:
    return [html.unescape(re.sub(r"<br>", "\n", text)) for text in re.findall(r"<span[^>]*>(.*?)</span>", chart)]


def background(chart: str) -> str:
    encoded = re.search(r"url\('data:image/svg\+xml;base64,([^']+)'\)", chart).group(1)
    return base64.b64decode(encoded).decode("utf-8")


def test_chart_words_are_text_at_8_pt_or_more_within_the_text_width():
    css = (REPO / "reports" / "templates" / "base.html").read_text(encoding="utf-8")
    rule = re.search(r"\.chart \{([^}]*)\}", css).group(1)
    assert float(re.search(r"font-size: ([\d.]+)pt", rule).group(1)) >= MIN_FONT_PT
    for name, chart in charts().items():
        assert words(chart), name
        # No label sets a size of its own, and the shapes carry no text at all.
        assert "font-size" not in "".join(re.findall(r'<span[^>]*style="([^"]*)"', chart)), name
        assert "<text" not in background(chart), name
        width = float(re.search(r'<svg[^>]*width="([\d.]+)pt"', background(chart)).group(1))
        assert width <= TEXT_WIDTH_PT and re.search(r"\.chart \{[^}]*width: ([\d.]+)pt", css).group(1) == f"{width:.1f}"


def test_charts_are_byte_reproducible():
    assert charts() == charts()


def test_every_axis_and_series_is_named():
    shown = {name: {w.replace("\u00a0", " ") for w in words(chart)} for name, chart in charts().items()}
    assert {"Средний балл (1–5)", "Группа компетенций", "Ваша команда", "Все школы края", "вход", "выход",
            "Универсальные компетенции"} <= shown["profile"]
    assert {"Участников", "Волна", "Ваша команда", "Среднее по школам края", "Входная", "Выходная", "6", "0",
            "4,2", "3,9"} <= shown["participation"]


def test_colours_keep_their_meaning():
    meaningful = {c.upper() for c in COLOURS.values()}
    for name, chart in charts().items():
        used = {c.upper() for c in re.findall(r"#[0-9A-Fa-f]{6}", background(chart) + chart)}
        assert used <= meaningful | NEUTRAL, (name, used - meaningful - NEUTRAL)
    assert COLOURS["own"].upper() in background(charts()["participation"]).upper()
    assert COLOURS["region"].upper() in background(charts()["profile"]).upper()


def test_one_score_axis_for_every_school_report_of_a_study():
    own = [{"kind": "own", "domain": "universal", "pre": 3.1, "post": 3.2}]
    other = [{"kind": "own", "domain": "universal", "pre": 2.2, "post": 4.0},
             {"kind": "region", "domain": "professional", "pre": 3.0, "post": 3.3}]
    ticks = [[w for w in words(school_charts.profile_chart(s, DOMAINS, score_axis(), PROFILE_NAMES, "ru", "x"))
              if re.fullmatch(r"\d,\d", w)] for s in (own, other)]
    assert ticks[0] == ticks[1] == ["1,0", "1,5", "2,0", "2,5", "3,0", "3,5", "4,0", "4,5", "5,0"]


def test_labels_make_room_for_the_widest_row_label():
    """The plot starts right of the widest row label (measured in the font's advance widths)."""
    long = {"universal": "Очень длинное название группы компетенций для проверки"}
    chart = school_charts.profile_chart([{"kind": "own", "domain": "universal", "pre": 3, "post": 4}], long,
                                        score_axis(), PROFILE_NAMES, "ru", "x")
    lines = [line for w in words(chart) for line in w.split("\n") if "группы" in line or "Очень" in line]
    widest = max(school_charts.text_width(line) for line in lines)
    axis_x = float(re.search(r'<line x1="([\d.]+)" y1="[\d.]+" x2="\1"', background(chart)).group(1))
    assert axis_x >= widest + school_charts.GAP
    assert school_charts.text_width("ММ") == pytest.approx(2 * school_charts.text_width("М"))
    assert school_charts.text_width("М") > school_charts.text_width("i") > 0


def figures_pdf(tagged_roles: bool = True) -> bytes:
    body = "".join(f'<figure>{chart}<figcaption>Рисунок {i}.</figcaption></figure>'
                   for i, chart in enumerate(charts().values(), start=1))
    css = (REPO / "reports" / "templates" / "base.html").read_text(encoding="utf-8")
    style = re.search(r"<style>.*?</style>", css, re.S).group(0).replace("{{ t.page }}", "").replace("{{ t.of }}", "")
    page = f'<html lang="ru"><head><title>Рисунки</title>{style}</head><body><h1>Рисунки</h1><p>Текст.</p>{body}</body></html>'
    info = DocumentInfo("Рисунки", "ru", ("АмГПГУ",))
    if tagged_roles:
        return render_report(page, REPO / "reports" / "templates", info, b"charts")
    from dpo_eval.reporting import accessibility
    saved = accessibility._tag_roles
    accessibility._tag_roles = lambda build: build
    try:
        return render_report(page, REPO / "reports" / "templates", info, b"charts")
    finally:
        accessibility._tag_roles = saved


def figure_alts(pdf: bytes) -> list[str]:
    alts = []
    with pikepdf.open(io.BytesIO(pdf)) as document:
        stack = [document.Root.StructTreeRoot]
        while stack:
            node = stack.pop()
            if str(node.get("/S", "")) == "/Figure":
                alts.append(str(node.get("/Alt", "")))
            kids = node.get("/K")
            if isinstance(kids, pikepdf.Array):
                stack.extend(k for k in kids if isinstance(k, pikepdf.Dictionary))
            elif isinstance(kids, pikepdf.Dictionary):
                stack.append(kids)
    return sorted(alts)


@pytest.mark.requires_tool("pdftotext")
def test_in_the_pdf_a_chart_is_one_tagged_figure_whose_words_can_be_found():
    pdf = figures_pdf()
    assert figure_alts(pdf) == ["профиль", "участие"]
    # Without the role tagging the charts are anonymous Divs: no figure, no alternative text.
    assert figure_alts(figures_pdf(tagged_roles=False)) == []
    assert pdf == figures_pdf()
    text = subprocess.run([shutil.which("pdftotext"), "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode("utf-8").replace("\u00a0", " ")
    for label in ("Ваша команда", "Среднее по школам края", "Средний балл (1–5)", "Универсальные компетенции",
                  "Группа компетенций"):
        assert label in text, label

"""Tagged PDFs (PDF/UA-1): structure tree, alternative texts of figures, language, title and
authors; figure labels found by pdftotext; no line of a Russian report ending with a one-letter
word; no page but the last more than 40 % empty (measured on the rendered page images)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pikepdf
import pytest
import yaml
from PIL import Image

from dpo_eval.reporting import figures
from dpo_eval.reporting.accessibility import DocumentInfo, organisations, pdf_options
from dpo_eval.reporting.formulas import formula_html, formula_text
from dpo_eval.reporting.layout import MAX_EMPTY_SHARE, render_report
from dpo_eval.reporting.typography import SHORT_WORDS, typeset_html

from conftest import REPO

needs_poppler = pytest.mark.requires_tool("pdftotext")
ONE_LETTER = tuple(w for w in SHORT_WORDS["ru"] if len(w) == 1)


def structure_problems(pdf: bytes | Path) -> list[str]:
    """What keeps a PDF from being read by a screen reader: no structure tree, not marked as
    tagged, no language or title, a figure without alternative text."""
    problems = []
    with pikepdf.open(pdf if isinstance(pdf, Path) else __import__("io").BytesIO(pdf)) as document:
        root = document.Root
        if "/StructTreeRoot" not in root:
            return ["no structure tree"]
        if not bool(root.get("/MarkInfo", {}).get("/Marked", False)):
            problems.append("not marked as tagged")
        if not str(root.get("/Lang", "")):
            problems.append("no document language")
        if not str(document.docinfo.get("/Title", "")):
            problems.append("no title")
        kinds: dict[str, int] = {}
        stack = [root.StructTreeRoot]
        while stack:
            node = stack.pop()
            kind = str(node.get("/S", ""))
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "/Figure" and not str(node.get("/Alt", "")).strip():
                problems.append("figure without alternative text")
            kids = node.get("/K")
            if isinstance(kids, pikepdf.Array):
                stack.extend(k for k in kids if isinstance(k, pikepdf.Dictionary))
            elif isinstance(kids, pikepdf.Dictionary):
                stack.append(kids)
        for required in ("/H1", "/P"):
            if required not in kinds:
                problems.append(f"no {required[1:]} element")
    return problems


def page_empty_shares(pdf: Path, dpi: int = 30) -> list[float]:
    """Per page, the share of the content area (inside the 22 mm top and 20 mm bottom margins)
    below its last inked row, from the pdftoppm image of the page."""
    folder = pdf.parent / f".{pdf.stem}.pages"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        subprocess.run([shutil.which("pdftoppm"), "-r", str(dpi), "-gray", "-png", str(pdf), str(folder / "p")],
                       check=True)
        shares = []
        for image in sorted(folder.glob("p-*.png"), key=lambda p: int(p.stem.split("-")[1])):
            pixels = np.asarray(Image.open(image).convert("L"))
            per_mm = pixels.shape[0] / 297
            body = pixels[int(22 * per_mm):int((297 - 20) * per_mm)]
            inked = np.nonzero((body < 200).any(axis=1))[0]
            shares.append(1 - (inked.max() + 1 if len(inked) else 0) / body.shape[0])
        return shares
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pdf_lines(pdf: Path) -> list[str]:
    text = subprocess.run([shutil.which("pdftotext"), str(pdf), "-"], capture_output=True, check=True,
                          text=True).stdout
    return [line.strip() for line in text.splitlines() if line.strip()]


def lines_ending_in_one_letter_word(lines: list[str]) -> list[str]:
    pattern = re.compile(rf"(?:^|\s)(?:{'|'.join(ONE_LETTER)})$", re.IGNORECASE)
    return [line for line in lines if pattern.search(line)]


# --------------------------------------------------------------------------- units

@pytest.mark.parametrize("tex,text", [
    (r"t = \hat\beta_3 / \mathrm{SE}(\hat\beta_3)", "t = β̂₃ / SE(β̂₃)"),
    (r"u_j \sim N(0,\ \sigma^2_u)", "uⱼ ~ N(0, σ²ᵤ)"),
    (r"c_P = 1 - \frac{3}{4 (n_P + n_C - 2) - 1}", "c_P = 1 − 3/(4 (n_P + n_C − 2) − 1)"),
    (r"\bar M_{0,P}", "M̄_(0,P)"),
    (r"y_{ijt} = \beta_0 + \gamma^{\top} x_{ij}", "yᵢⱼₜ = β₀ + γᵀ xᵢⱼ"),
])
def test_formula_text_alternative(tex, text):
    assert formula_text(tex) == text


def test_formula_html_sets_scripts_variables_and_parts():
    markup = formula_html(r"d_{\mathrm{ppc2}} = c_P\, \frac{\bar M_{1,P}}{S_0}, \qquad y_{ijt} \sim N(0,\ \sigma^2_u)")
    assert '<i>d</i><sub>ppc2</sub>' in markup            # a descriptive subscript upright
    assert '<i>y</i><sub><i>ijt</i></sub>' in markup      # indices are variables: italic
    assert '<i>M\u0304</i>' in markup                     # the accent joins its letter
    assert 'σ<sup>2</sup><sub><i>u</i></sub>' in markup
    assert markup.count('class="part"') == 2 and 'role="math"' in markup
    assert 'aria-label="d_(ppc2) = ' in markup


def test_inline_formulas_of_the_strings_become_text_not_identifiers():
    out = typeset_html(r"<p>эффект ($d_{\mathrm{ppc2}}$ = 0,5) в школе</p>", "ru")
    assert "$" not in out and "mathrm" not in out
    assert "<i>d</i><sub>ppc2</sub>" in out
    # The rules see a formula as a word: the dash after it never begins a line.
    assert "</span></span>\u00a0— общая" in typeset_html("<p>где $T$ — общая</p>", "ru")


def test_authors_are_the_organisations_of_the_configuration(demo_config):
    assert organisations(demo_config, "ru") == ("Амурский гуманитарно-педагогический государственный университет",
                                                "Хабаровский краевой институт развития образования")
    assert organisations(demo_config, "en")[0] == "Amur Humanitarian-Pedagogical State University"
    assert pdf_options(b"x")["pdf_variant"] == "pdf/ua-1"


SAMPLE = """<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>Отчёт</title><style>
@font-face {{ font-family: "Report Sans"; src: url("../fonts/DejaVuSans.ttf"); }}
html {{ font-family: "Report Sans"; }} img {{ max-width: 100%; }}</style></head><body>
<h1>Отчёт о программе</h1><p>Прирост больше на 0,33 балла в группе программы и в школах.</p>
<figure><img src="{image}" alt="{alt}"><figcaption>Рисунок 1. Разность разностей</figcaption></figure>
<p class="formula">${formula}$</p>
<table><thead><tr><th>Группа</th><th>Оценка</th></tr></thead><tbody><tr><td>Универсальные</td><td>0,33</td></tr></tbody></table>
</body></html>"""


SAMPLE_FORMULA = r"y_{ijt} = \beta_0 + \beta_3\, t\, g_j + u_j"


def visible_text(markup: str) -> str:
    """What a formula's HTML shows, without markup and white space."""
    import html

    return re.sub(r"\s+", "", html.unescape(re.sub(r"<[^>]+>", "", markup)))


def sample_pdf(alt: str = "Разность разностей: 0,33 [0,18; 0,47]", tagged: bool = True) -> bytes:
    import pandas as pd

    from dpo_eval.reporting.report_figures import svg_uri as svg_image

    rows = pd.DataFrame({"label": ["Универсальные компетенции"], "estimate": [0.33], "conf_low": [0.18],
                         "conf_high": [0.47]})
    image = svg_image(figures.forest_plot(rows, "label", "нет различий", "Разность разностей, баллы", "ru"))
    info = DocumentInfo("Отчёт", "ru", ("АмГПГУ", "ХК ИРО"))
    return render_report(SAMPLE.format(image=image, alt=alt, formula=SAMPLE_FORMULA), REPO / "reports" / "templates", info, b"sample",
                         tagged=tagged)


def test_a_report_laid_out_from_its_parsed_tree_is_the_bytes_of_one_parsed_from_its_text():
    """render_report hands WeasyPrint the tree it has already parsed (``layout.parsed_html``)
    instead of serialising it and parsing it again for every layout: the PDF is the same."""
    import tinyhtml5
    from weasyprint import HTML

    from dpo_eval.reporting.accessibility import write_pdf
    from dpo_eval.reporting.layout import parsed_html

    markup = typeset_html(SAMPLE.format(image="../fonts/none.svg", alt="Рисунок", formula=SAMPLE_FORMULA), "ru")
    base = REPO / "reports" / "templates"
    info = DocumentInfo("Отчёт", "ru", ("АмГПГУ",))
    from_tree = write_pdf(parsed_html(tinyhtml5.parse(markup, namespace_html_elements=False), base), info, b"x")
    from_text = write_pdf(HTML(string=markup, base_url=str(base)), info, b"x")
    assert from_tree.startswith(b"%PDF-") and from_tree == from_text


def test_a_tagged_report_passes_the_structure_check_and_an_untagged_one_fails():
    assert structure_problems(sample_pdf()) == []
    assert structure_problems(sample_pdf(tagged=False)) == ["no structure tree"]
    assert "figure without alternative text" in structure_problems(sample_pdf(alt=""))
    with pikepdf.open(__import__("io").BytesIO(sample_pdf())) as document:
        assert str(document.Root.Lang) == "ru"
        assert str(document.docinfo.Author) == "АмГПГУ, ХК ИРО"


def formula_alternatives(pdf: bytes) -> list[str]:
    """The alternative texts of the structure tree's Formula elements."""
    with pikepdf.open(__import__("io").BytesIO(pdf)) as document:
        found, stack = [], [document.Root.StructTreeRoot]
        while stack:
            node = stack.pop()
            if str(node.get("/S", "")) == "/Formula":
                found.append(str(node.get("/Alt", "")))
            kids = node.get("/K")
            stack.extend(k for k in (kids if isinstance(kids, pikepdf.Array) else [kids])
                         if isinstance(k, pikepdf.Dictionary))
    return found


@needs_poppler
def test_a_formula_is_text_tagged_as_formula_with_its_alternative(tmp_path):
    pdf = sample_pdf()
    assert formula_alternatives(pdf) == [formula_text(SAMPLE_FORMULA)]
    (tmp_path / "sample.pdf").write_bytes(pdf)
    text = re.sub(r"\s+", "", " ".join(pdf_lines(tmp_path / "sample.pdf")))
    assert visible_text(formula_html(SAMPLE_FORMULA)) in text  # "yijt=β0+β3tgj+uj", copyable


# --------------------------------------------------------------------------- the demo study

def demo_reports(demo_run: Path) -> list[Path]:
    reports = demo_run / "results" / "reports"
    return [reports / "evaluation.ru.pdf", reports / "evaluation.en.pdf",
            *sorted((reports / "institutions").glob("*.pdf"))]


@pytest.mark.pipeline
@needs_poppler
def test_every_report_of_the_demo_is_tagged_with_language_title_and_alternative_texts(demo_run):
    for path in demo_reports(demo_run):
        assert structure_problems(path) == [], path.name
        with pikepdf.open(path) as document:
            assert str(document.Root.Lang) in ("ru", "en"), path.name
            assert "dpo_eval" not in str(document.docinfo.get("/Author", "")), path.name


@pytest.mark.pipeline
@needs_poppler
def test_figure_labels_are_text_and_no_russian_line_ends_with_a_one_letter_word(demo_run):
    for lang in ("ru", "en"):
        strings = yaml.safe_load((REPO / "reports" / "i18n" / f"{lang}.yaml").read_text(encoding="utf-8"))
        codebook = yaml.safe_load((REPO / "config" / "codebook.yaml").read_text(encoding="utf-8"))
        text = " ".join(pdf_lines(demo_run / "results" / "reports" / f"evaluation.{lang}.pdf"))
        text = re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u202f", " "))
        # Words only the figures carry: axis titles, the needs scale's labels, the flow diagram's boxes.
        labels = [*strings["figure_axes"].values(), strings["flow_words"]["careless"], strings["did_axis"],
                  *(point[lang] for point in codebook["scales"]["importance5"].values())]
        for label in labels:
            assert re.sub(r"\s+", " ", label) in text, (lang, label)
    ru = pdf_lines(demo_run / "results" / "reports" / "evaluation.ru.pdf")
    assert lines_ending_in_one_letter_word(ru) == []
    assert lines_ending_in_one_letter_word(["сотрудничество с", "вузом"]) == ["сотрудничество с"]


# A name from the code (snake_case: d_ppc2, mc_low, years_in_management) where a reader expects
# words or notation; file paths ("results/audit/invalid_values.csv") are references, not names.
IDENTIFIER = re.compile(r"(?<![\w/.])[A-Za-z]+(?:_[A-Za-z0-9]+)+(?![\w/.])")


def leftover_identifiers(text: str) -> list[str]:
    return sorted(set(IDENTIFIER.findall(text)))


@pytest.mark.pipeline
@needs_poppler
def test_formulas_are_text_and_no_identifier_is_left_in_the_evaluation_reports(demo_run):
    """Appendix A's formulas can be found and copied (pdftotext finds the model formula), and
    the text before Appendix B (where the provenance values stay literal, in monospace) holds
    no identifier from the code: d_ppc2 is set as d with subscript ppc2."""
    assert leftover_identifiers("effect (d_ppc2 = 0.49), mc_low, see results/audit/invalid_values.csv") == [
        "d_ppc2", "mc_low"]
    for lang in ("ru", "en"):
        strings = yaml.safe_load((REPO / "reports" / "i18n" / f"{lang}.yaml").read_text(encoding="utf-8"))
        pdf = demo_run / "results" / "reports" / f"evaluation.{lang}.pdf"
        text = "\n".join(pdf_lines(pdf))
        body = text[:text.rfind(strings["sections"]["provenance"])]
        assert leftover_identifiers(body) == [], lang
        keys = [*yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))["analysis"]["domains"],
                "all"]
        assert re.findall(rf"\((?:{'|'.join(keys)})\)", body) == [], lang  # "combined model (all)"
        squeezed = "".join(text.split())
        for item in strings["methods"]:
            for tex in item["formulas"]:
                for part in tex.split(r"\qquad"):
                    assert visible_text(formula_html(part)) in squeezed, (lang, part)
        assert "dppc2=" in "".join(body.split()), lang  # the gain sentences name the effect size
        assert len(formula_alternatives(pdf.read_bytes())) >= 5, lang


# The layout rule must hold with room to spare, not by chance (a page 37% empty met it).
LAYOUT_MARGIN = 0.10
PARTICIPATION_LINE = re.compile(r"^(?:входная|pre): \d", re.MULTILINE)
FIGURE_ONE = re.compile(r"^(?:Рисунок|Figure)\s1\.", re.MULTILINE)


def layout_problems(reports: list[Path]) -> list[tuple]:
    """Pages but the last emptier than the rule less its margin, and school reports whose
    participation counts are not on the page of the figure they belong to."""
    problems = []
    for path in reports:
        shares = page_empty_shares(path)
        if any(share > MAX_EMPTY_SHARE - LAYOUT_MARGIN for share in shares[:-1]):
            problems.append((path.name, [round(float(s), 2) for s in shares]))
        if path.parent.name != "institutions":
            continue  # the participation counts are a school report's
        pages = subprocess.run([shutil.which("pdftotext"), str(path), "-"], capture_output=True, check=True,
                               text=True).stdout.split("\f")
        lines = [i for i, page in enumerate(pages) if PARTICIPATION_LINE.search(page)]
        figures = [i for i, page in enumerate(pages) if FIGURE_ONE.search(page)]
        if lines and lines[:1] != figures[:1]:
            problems.append((path.name, "participation counts on page", lines[0] + 1, "figure on", figures[:1]))
    return problems


@pytest.mark.pipeline
@needs_poppler
def test_no_page_but_the_last_is_more_than_40_percent_empty(demo_run, small_teams_run):
    """On the demo (both evaluation reports, every school report, every level of them) and on
    the many-small-teams study (30 schools: its English evaluation report and its school
    reports): the rule with its margin, and the participation counts never alone on a page."""
    levels = set(pd.read_csv(demo_run / "results" / "reports" / "institutions" / "index.csv")["scores_level"])
    assert {"team", "municipality_cohort", "cohort"} <= levels
    others = [small_teams_run / "results" / "reports" / "evaluation.en.pdf",
              *sorted((small_teams_run / "results" / "reports" / "institutions").glob("*.pdf"))]
    assert layout_problems(demo_reports(demo_run) + others) == []


TABLE_HTML = ("<html lang=ru><body><table><tr><th>A</th><th>B</th></tr>"
              "<tr><td>1</td><td>2</td></tr></table></body></html>")
RENDER_IN_A_NEW_PROCESS = """
import sys
from weasyprint import HTML
from dpo_eval.reporting.accessibility import DocumentInfo, write_pdf
info = DocumentInfo("t", "ru", ("x",))
sys.stdout.buffer.write(write_pdf(HTML(string=sys.argv[1]), info, b"0123456789abcdef"))
"""


def test_a_tagged_table_is_the_same_bytes_in_another_process():
    """WeasyPrint names header cells by their memory address; two processes (two Slurm jobs, two
    runs) must still write the same bytes."""
    import subprocess
    import sys

    runs = [subprocess.run([sys.executable, "-c", RENDER_IN_A_NEW_PROCESS, TABLE_HTML], capture_output=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0].startswith(b"%PDF-") and runs[0] == runs[1]


# --------------------------------------------------------------------------- layout rules

def report_style() -> str:
    """The reports' stylesheet (base.html's <style>)."""
    base = (REPO / "reports" / "templates" / "base.html").read_text(encoding="utf-8")
    return re.search(r"<style>.*?</style>", base, re.DOTALL).group(0)


def test_a_note_under_a_figure_is_never_alone_at_the_head_of_a_page():
    """The participation counts under a school report's Figure 1 (a one-line p.note): wherever
    the figure ends on the page, the line stays on the figure's page."""
    from weasyprint import HTML

    from dpo_eval.reporting.layout import _body_children

    split = []
    for spacer in range(180, 250, 3):
        html = (f'<html lang="ru"><head>{report_style()}</head><body><div style="height:{spacer}mm"></div>'
                '<figure><div style="height:25mm"></div><figcaption>Рисунок 1. Участие</figcaption></figure>'
                '<p class="note">входная: 5; выходная: 5</p><h2>Баллы</h2><p>Текст.</p></body></html>')
        pages = [[child.element_tag for child in _body_children(page)] for page in HTML(string=html).render().pages]
        if not any("figure" in tags and "p" in tags[tags.index("figure"):] for tags in pages):
            split.append((spacer, pages))
    assert split == []


def test_a_float_moves_down_with_its_note_and_never_to_just_after_a_heading():
    import xml.etree.ElementTree as ET

    from dpo_eval.reporting.layout import INDEX_ATTRIBUTE, _float_down

    body = ET.fromstring('<body><p id="a"/><figure id="f"/><p id="n" class="note"/><p id="b"/><h2 id="h"/>'
                         '</body>')
    for index, child in enumerate(body):
        child.set(INDEX_ATTRIBUTE, str(index))
    heights = {str(i): 10.0 for i in range(len(body))}
    assert _float_down(body, body[1], room=100.0, heights=heights)
    assert [child.get("id") for child in body] == ["a", "b", "f", "n", "h"]


@pytest.mark.slow
@pytest.mark.pipeline
@needs_poppler
def test_layout_rules_hold_on_a_generated_ten_school_study(tmp_path):
    """The school reports of a generated study of 10 schools (other page breaks than the demo's;
    hidden region means): the same rules. The disclosure control refuses an evaluation report
    for a study this small ("the study is too small ... at this threshold"), so the evaluation
    reports of a generated study are checked on the 30-school one (the test above)."""
    from conftest import copy_project, run_snakemake, simulate

    simulate(tmp_path / "study", "--seed", "7", "--schools", "10", "--municipalities", "4",
             "--team-size", "12")
    project = copy_project(tmp_path / "project", raw_dir=tmp_path / "study" / "raw")
    run_snakemake(project, "--cores", "2", "results/reports/institutions")
    paths = sorted((project / "results" / "reports" / "institutions").glob("*.pdf"))
    assert len(paths) == 10
    assert all(structure_problems(path) == [] for path in paths)
    assert layout_problems(paths) == []


def test_a_float_kept_with_its_section_heading_floats_within_the_section(tmp_path):
    """A heading opens the next page only because it is kept with the figure under it (the
    power report's "Power curve"): the heading stays, the figure floats down past the table and
    note after it (first within its section), and the page before is filled."""
    # Unbalanced, this text leaves the first page 46 % empty (the heading goes with the figure).
    filler = "".join(f"<p>{'Строка текста отчёта о программе. ' * 12}</p>" for _ in range(5))
    html = (f'<html lang="ru"><head>{report_style()}</head><body><h1>Отчёт</h1>{filler}'
            '<h2>Кривая</h2><figure><div style="height:110mm"></div><figcaption>Рисунок 1</figcaption></figure>'
            '<div class="block"><table><tbody><tr><td>1</td></tr><tr><td>2</td></tr></tbody></table></div>'
            '<p class="note">Примечание к таблице.</p><h2>Метод</h2>'
            f"{filler}</body></html>")
    pdf = tmp_path / "float.pdf"
    pdf.write_bytes(render_report(html, REPO / "reports" / "templates", None, b"float"))
    shares = page_empty_shares(pdf)
    assert all(share <= MAX_EMPTY_SHARE - LAYOUT_MARGIN for share in shares[:-1]), [round(float(s), 2) for s in shares]
    pages = subprocess.run([shutil.which("pdftotext"), str(pdf), "-"], capture_output=True, check=True,
                           text=True).stdout.split("\f")
    first = next(i for i, page in enumerate(pages) if "Кривая" in page)
    assert "Примечание к таблице." in pages[first]
    text = "\f".join(pages)
    assert text.index("Примечание к таблице.") < text.index("Рисунок 1")  # the figure floated


def test_a_shared_stylesheet_gives_the_bytes_of_the_documents_own_and_is_parsed_once():
    """render_report with a font configuration parses the reports' stylesheet once per process
    (``layout.shared_stylesheets``) and hands it to WeasyPrint instead of the document's
    ``<style>``: the PDF is the same bytes as with the document's own stylesheet; a document
    whose stylesheets could not all move (a ``<link>``, an ``!important``) keeps them."""
    import tinyhtml5
    from weasyprint.text.fonts import FontConfiguration

    from dpo_eval.reporting import layout

    style = report_style().replace("{{ t.page }}", "стр.").replace("{{ t.of }}", "из")
    body = ('<h1>Отчёт школы</h1><h2>Баллы</h2><p class="note" style="color: #333">Примечание.</p>'
            '<div class="block"><table class="scores"><caption>Таблица 1. Баллы</caption><thead><tr><th>Шкала</th>'
            '<th class="num">Балл</th></tr></thead><tbody><tr><td>Универсальные</td><td class="num">3,20</td></tr>'
            '</tbody></table></div>')
    html = f'<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>Отчёт</title>{style}</head><body>{body}</body></html>'
    base = REPO / "reports" / "templates"
    info = DocumentInfo("Отчёт", "ru", ("ХК ИРО",))
    own = render_report(html, base, info, b"style")
    fonts = FontConfiguration()
    shared = [render_report(html, base, info, b"style", fonts) for _ in range(2)]
    assert own.startswith(b"%PDF-") and shared[0] == own and shared[1] == own
    assert sum(key[0] is fonts for key in layout._STYLESHEETS) == 1
    for head in (style + '<link rel="stylesheet" href="x.css">', style.replace("color: #111", "color: #111 !important")):
        tree = tinyhtml5.parse(f"<html><head>{head}</head><body></body></html>", namespace_html_elements=False)
        assert layout.shared_stylesheets(tree, base, fonts) == [] and tree.find(".//style") is not None

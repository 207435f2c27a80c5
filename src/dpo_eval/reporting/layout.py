"""From a report's HTML to its tagged PDF: the typesetting pass, page balancing and PDF/UA output.

``render_report`` is the one call a report renderer makes. Page balancing stands in for the
page floats WeasyPrint lacks: a figure or a table that may not be split (``figure``,
``div.block``) and does not fit at the foot of a page leaves the rest of that page empty. After
each layout, the first page (but the document's last) emptier than ``BALANCE_SHARE`` whose
next page opens with such an element gets it "floated" down: the element changes places with
the paragraph, list or block after it, so that the text fills the page (as LaTeX floats figures
and tables), or, for a table of many rows, may now be split (its header repeats on the next
page). This repeats until no page qualifies or nothing more can be moved.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml

from dpo_eval.reporting.accessibility import DocumentInfo, write_pdf
from dpo_eval.reporting.typography import typeset_html

MAX_EMPTY_SHARE = 0.40
# Pages are balanced from this share on, well below the rule's, so that the rule holds with a
# margin (a page at 37% empty met the rule by chance, not by design).
BALANCE_SHARE = 0.25
MAX_MOVES = 8
# A table of at least this many body rows may be split across pages when that fills a page.
SPLITTABLE_ROWS = 8
INDEX_ATTRIBUTE = "data-flow-index"
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# How often one element may be floated down.
MAX_MOVES_PER_ELEMENT = 3

log = logging.getLogger("dpo_eval")

# Parsed stylesheets by (font configuration, base URL, text), see shared_stylesheets.
_STYLESHEETS: dict[tuple, object] = {}


def load_terms(i18n_dir: str | Path, lang: str) -> dict[str, str]:
    """The abbreviations to expand at first use (reports/i18n/abbreviations.yaml), for ``lang``."""
    path = Path(i18n_dir) / "abbreviations.yaml"
    if not path.exists():
        return {}
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")).get(lang, {}))


@dataclass(frozen=True)
class PageFill:
    number: int          # 1-based
    empty_share: float   # share of the page's content area below its last line
    free: float          # that space, in CSS px
    first: ET.Element | None  # the body-level element the page starts with
    continued: bool      # the page starts inside an element begun on the page before


def _body_children(page) -> list:
    html_box = page._page_box.children[0]
    body = next((child for child in getattr(html_box, "children", []) if child.element_tag == "body"), None)
    return [c for c in body.children if c.element is not None] if body is not None else []


def page_fill(document) -> list[PageFill]:
    """How full each page of a rendered WeasyPrint document is (from its boxes)."""
    fills, previous_last = [], None
    for number, page in enumerate(document.pages, start=1):
        box = page._page_box
        top, height = box.content_box_y(), box.height
        children = _body_children(page)
        bottom = max((c.position_y + c.margin_height() for c in children), default=top)
        first = children[0].element if children else None
        free = max(0.0, top + height - bottom)
        fills.append(PageFill(number, free / height, free, first, first is not None and first is previous_last))
        previous_last = children[-1].element if children else None
    return fills


def element_heights(document) -> dict[str, float]:
    """Height (CSS px, summed over its pages) of every body-level element, by its mark."""
    heights: dict[str, float] = {}
    for page in document.pages:
        for child in _body_children(page):
            index = child.element.get(INDEX_ATTRIBUTE)
            if index is not None:
                heights[index] = heights.get(index, 0.0) + child.margin_height()
    return heights


def _is_float(element: ET.Element) -> bool:
    if element.tag == "figure":
        return True
    return element.tag == "div" and "block" in element.get("class", "").split()


def _kind(element: ET.Element) -> str | None:
    """"figure" or "table" for a float (by what it holds), else None."""
    if element.tag == "figure" or (element.tag == "div" and element.find(".//img") is not None
                                   and element.find(".//table") is None):
        return "figure"
    if element.tag == "table" or element.find(".//table") is not None:
        return "table"
    return None


def _rows(element: ET.Element) -> int:
    return sum(1 for body in element.iter("tbody") for row in body if row.tag == "tr")


def _is_note(element: ET.Element) -> bool:
    """A note that belongs to the float before it (base.html keeps the two on one page)."""
    return element.tag == "p" and "note" in element.get("class", "").split()


def _float_down(body: ET.Element, element: ET.Element, room: float, heights: dict[str, float],
                in_section: bool = False) -> bool:
    """Move ``element`` down past the body-level elements after it that fit into ``room`` (at
    least one, and never to just after a heading: a heading stays with the text under it), as a
    float goes to the next page while the text after it fills this one; a long table that
    cannot move may split instead; ``in_section``: never past a heading. False when neither is
    possible."""
    children = list(body)
    index = children.index(element)
    # The float moves with the notes under it.
    group = [element]
    while index + len(group) < len(children) and _is_note(children[index + len(group)]):
        group.append(children[index + len(group)])
    start = index + len(group)
    # A float never passes another of its kind: figures and tables keep their numbered order.
    kind = _kind(element)
    last = next((i for i in range(start, len(children)) if _kind(children[i]) == kind), len(children))
    children = children[:last]
    target, used = start, 0.0
    while target < len(children):
        if in_section and children[target].tag in HEADINGS:
            break  # a float under its section's heading stays in that section
        used += heights.get(children[target].get(INDEX_ATTRIBUTE), 0.0)
        target += 1
        if children[target - 1].tag in HEADINGS:
            continue
        if target >= len(children) or used + heights.get(children[target].get(INDEX_ATTRIBUTE), 0.0) > room:
            break
    # Never to just after a heading, nor between a float and its note.
    while target > start and (children[target - 1].tag in HEADINGS
                              or (target < len(children) and _is_note(children[target]))):
        target -= 1
    if target > start:
        anchor = children[target - 1]
        for member in group:
            body.remove(member)
        position = list(body).index(anchor) + 1
        for offset, member in enumerate(group):
            body.insert(position + offset, member)
        return True
    if element.tag == "div" and _rows(element) >= SPLITTABLE_ROWS and "split" not in element.get("class", ""):
        element.set("class", element.get("class", "") + " split")
        return True
    return False


def _number_children(body: ET.Element) -> list[ET.Element]:
    """Mark each body-level element with its position: the rendered document is parsed from
    the serialised tree, so its elements are matched to the tree's by this mark."""
    children = list(body)
    for index, child in enumerate(children):
        child.set(INDEX_ATTRIBUTE, str(index))
    return children


def _candidate(children: list[ET.Element], fills: list[PageFill], heights: dict[str, float],
               moves: dict[int, int]) -> tuple[ET.Element | None, float, bool]:
    """The first float to move and the room on the page before it: a float that opens a page
    after one emptier than ``BALANCE_SHARE``, or the float under a heading that opens it (the
    heading went along only because it is kept with what follows; it stays, and the float moves
    within its section), with whether it opens a section."""
    for page, following in zip(fills, fills[1:]):
        index = following.first.get(INDEX_ATTRIBUTE) if following.first is not None else None
        if page.empty_share <= BALANCE_SHARE or index is None or following.continued:
            continue
        position, room = int(index), page.free
        under_heading = children[position].tag in HEADINGS and position + 1 < len(children)
        if under_heading:
            room -= heights.get(index, 0.0)
            position += 1
        element = children[position]
        if _is_float(element) and moves.get(id(element), 0) < MAX_MOVES_PER_ELEMENT:
            return element, room, under_heading
    return None, 0.0, False


def balance(root: ET.Element, render) -> object:
    """Render ``root`` with ``render`` (tree -> WeasyPrint document) and float elements down
    until no page but the last is emptier than ``BALANCE_SHARE`` (or nothing more can move);
    returns the last document."""
    body = root.find("body")
    children = _number_children(body)
    document = render(root)
    moves: dict[int, int] = {}
    for _ in range(MAX_MOVES):
        heights = element_heights(document)
        candidate, room, in_section = _candidate(children, page_fill(document), heights, moves)
        if candidate is None:
            break
        moves[id(candidate)] = moves.get(id(candidate), 0) + 1
        if not _float_down(body, candidate, room, heights, in_section):
            continue
        children = _number_children(body)
        document = render(root)
    return document


def render_report(html: str, base_url: str | Path, info: DocumentInfo | None, identifier: bytes, font_config=None,
                  terms: dict[str, str] | None = None, balanced: bool = True, tagged: bool = True) -> bytes:
    """A report's HTML as tagged PDF bytes: typeset by the rules of its language
    (``typeset_html``, with the abbreviations ``terms`` expanded at first use), pages balanced
    (``balance``), written as PDF/UA-1 with ``info`` as its metadata (None: neither typeset
    nor given other metadata than the HTML's own)."""
    import tinyhtml5
    from weasyprint import HTML

    markup = typeset_html(html, info.lang, terms) if info is not None else html
    if not balanced:
        return write_pdf(HTML(string=markup, base_url=str(base_url)), info, identifier, font_config, tagged=tagged)
    root = tinyhtml5.parse(markup, namespace_html_elements=False)
    sheets = shared_stylesheets(root, base_url, font_config) if font_config is not None else []
    state = {}

    def render(tree: ET.Element):
        state["html"] = parsed_html(tree, base_url)
        return state["html"].render(font_config=font_config, stylesheets=sheets)

    document = balance(root, render)
    return write_pdf(state["html"], info, identifier, font_config, tagged=tagged, document=document)


def shared_stylesheets(tree: ET.Element, base_url: str | Path, font_config) -> list:
    """The stylesheets of the tree's ``<style>`` elements, taken out of the tree and parsed once
    per process and ``font_config``: every school report of a study carries the same stylesheet,
    whose parsing, selector compiling and font loading a worker otherwise repeated for each of
    its thousands of reports.

    WeasyPrint applies stylesheets passed to ``render`` with the "user" origin instead of the
    "author" one of a ``<style>``. The cascade comes out the same when every stylesheet moves and
    none has an ``!important`` declaration, so that is when they are taken (plain ``<style>``
    elements only: no attribute, no ``<link>``); otherwise the tree keeps them all and this
    returns none. The PDFs are the same bytes either way (``tests/test_accessibility.py``)."""
    from weasyprint import CSS

    found = [(parent, element) for parent in tree.iter() for element in parent if element.tag in ("style", "link")]
    if not all(element.tag == "style" and not element.attrib and not len(element)
               and "!important" not in (element.text or "") for _, element in found):
        return []  # another origin would change the cascade: everything stays in the document
    sheets = []
    for parent, element in found:
        key = (font_config, str(base_url), element.text or "")
        if key not in _STYLESHEETS:
            _STYLESHEETS[key] = CSS(string=key[2], base_url=key[1], font_config=font_config)
        sheets.append(_STYLESHEETS[key])
        parent.remove(element)
    return sheets


def parsed_html(tree: ET.Element, base_url: str | Path):
    """A WeasyPrint ``HTML`` of a tree parsed by tinyhtml5 (as ``HTML(string=...)`` parses it),
    without serialising the tree and parsing it again for every layout: what ``HTML.__init__``
    does after parsing. A school report is laid out thousands of times per study."""
    import cssselect2
    from weasyprint import HTML
    from weasyprint.urls import default_url_fetcher, ensure_url

    if tree.find(".//base") is not None:  # a <base href> would change the base URL: parse as WeasyPrint does
        return HTML(string="<!DOCTYPE html>\n" + ET.tostring(tree, encoding="unicode", method="html"),
                    base_url=str(base_url))
    html = HTML.__new__(HTML)
    html.base_url, html.url_fetcher, html.media_type = ensure_url(str(base_url)), default_url_fetcher, "print"
    html.wrapper_element = cssselect2.ElementWrapper.from_html_root(tree, content_language=None)
    html.etree_element = html.wrapper_element.etree_element
    return html

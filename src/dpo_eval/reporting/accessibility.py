"""Accessible PDFs: WeasyPrint's PDF/UA-1 output with the document's metadata, and formulas and
charts drawn as HTML tagged as such (``Formula`` and ``Figure`` with their alternative text,
``role_tags``).

PDF/UA-1 (ISO 14289-1) is chosen over PDF/A: the reports are read by people (public bodies
that receive them must publish accessible documents), and WeasyPrint's PDF/UA-1 variant writes
the structure tree (headings, paragraphs, lists, tables with header cells, figures with their
alternative text), marks the document as tagged, sets its language and shows its title instead
of the file name. Bookmarks come from the headings. Archiving needs PDF/A-2u on top, which
WeasyPrint cannot combine with PDF/UA in one file; the reproduction package keeps the inputs
from which every report is rebuilt byte for byte instead.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

PDF_VARIANT = "pdf/ua-1"


@dataclass(frozen=True)
class DocumentInfo:
    """What the PDF says about itself: title, language (BCP 47) and authors (organisations)."""
    title: str
    lang: str
    authors: tuple[str, ...]
    subject: str | None = None


def organisations(config: dict, lang: str) -> tuple[str, ...]:
    """The organisations behind the reports, in the order of ``reports.authors`` of the
    configuration (each author's affiliation, once each): the PDF's Author field."""
    names = [author["affiliation"][lang] for author in config.get("reports", {}).get("authors", [])]
    return tuple(dict.fromkeys(names))


def pdf_options(identifier: bytes, font_config=None, tagged: bool = True) -> dict:
    """Keyword arguments of WeasyPrint's ``write_pdf`` for a report: PDF/UA-1 (tagged) and a
    document identifier derived from the content (so that the bytes depend only on it).
    ``tagged=False`` exists for the test that shows the check of the tags can fail."""
    options = {"pdf_identifier": identifier, "font_config": font_config}
    if tagged:
        options["pdf_variant"] = PDF_VARIANT
    return options


def write_pdf(html, info: DocumentInfo | None, identifier: bytes, font_config=None, tagged: bool = True,
              document=None) -> bytes:
    """A WeasyPrint ``HTML`` (or its already rendered ``document``) as tagged PDF bytes with
    ``info`` as its metadata (the title, language and authors a screen reader and a document
    list show); ``info`` None keeps what the HTML says (``<title>``, ``lang``, ``<meta>``)."""
    if document is None:
        document = html.render(font_config=font_config)
    if info is not None:
        document.metadata.title = info.title
        document.metadata.lang = info.lang
        document.metadata.authors = list(info.authors)
        if info.subject:
            document.metadata.description = info.subject
    document.metadata.generator = "dpo_eval"
    options = pdf_options(identifier, tagged=tagged)
    options.pop("font_config")
    with stable_structure_ids():
        return document.write_pdf(**options)


class _SequentialIds:
    """Stands in for ``id()`` in WeasyPrint's tagging: numbers objects in the order they are
    first seen (the boxes' order in the document), instead of their memory addresses."""

    def __init__(self) -> None:
        self.numbers: dict[int, int] = {}
        self.alive: list[object] = []  # keeps every numbered object alive: addresses stay unique

    def __call__(self, obj: object) -> int:
        key = id(obj)
        if key not in self.numbers:
            self.numbers[key] = len(self.numbers) + 1
            self.alive.append(obj)
        return self.numbers[key]


@contextlib.contextmanager
def stable_structure_ids():
    """WeasyPrint 66 names table header cells in the structure tree by ``id(box)``, a memory
    address that differs between processes, so the same report came out with other bytes in
    another process (a Slurm job, a second run). During one ``write_pdf`` the ids are replaced by
    sequence numbers in document order: the same document gives the same bytes."""
    from weasyprint.pdf import tags

    tags.id = _SequentialIds()
    try:
        with role_tags():
            yield
    finally:
        del tags.id


def _tag_roles(build):
    """WeasyPrint's structure builder, with an element of ``role="math"`` (``formulas.formula_html``)
    tagged ``Formula`` and one of ``role="img"`` (a chart drawn as HTML, ``school_charts``)
    tagged ``Figure`` with its bounding box, each with its ``aria-label`` as ``Alt``: PDF/UA-1
    (ISO 14289-1, 7.3 and 7.7) wants every figure and formula in such an element with an
    alternative text, and WeasyPrint maps elements by their tag name alone (a ``span`` becomes
    ``Span``, a ``div`` ``Div``)."""
    import pydyf

    def build_box_tree(box, *args):
        for element in build(box, *args):
            attributes = getattr(getattr(box, "element", None), "attrib", {})
            role = attributes.get("role")
            if role == "math" and element.get("S") == "/Span":
                element["S"] = "/Formula"
                element["Alt"] = pydyf.String(attributes.get("aria-label", ""))
            elif role == "img" and element.get("S") == "/Div":
                x, y = box.content_box_x(), box.content_box_y()
                element["S"] = "/Figure"
                element["Alt"] = pydyf.String(attributes.get("aria-label", ""))
                element["A"] = pydyf.Dictionary({"O": "/Layout",
                                                 "BBox": pydyf.Array((x, y, x + box.width, y + box.height))})
            yield element

    return build_box_tree


@contextlib.contextmanager
def role_tags():
    """During one ``write_pdf``: formulas tagged as ``Formula``, charts drawn as HTML as
    ``Figure`` (``_tag_roles``)."""
    from weasyprint.pdf import tags

    if not hasattr(tags, "_build_box_tree"):
        raise RuntimeError("weasyprint.pdf.tags._build_box_tree is gone (WeasyPrint upgraded?): "
                           "role_tags() must be adapted to keep formulas and charts tagged")
    saved = tags._build_box_tree
    tags._build_box_tree = _tag_roles(saved)
    try:
        yield
    finally:
        tags._build_box_tree = saved

"""Rendering: Jinja2 templates to byte-stable, tagged PDFs (WeasyPrint), with the fonts
subset the same way on every machine where the PDFs must be rebuilt byte for byte."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from dpo_eval.reporting.accessibility import DocumentInfo, organisations
from dpo_eval.reporting.layout import render_report

# Loggers whose INFO/DEBUG chatter (one line per font table read) would bury the real warnings.
QUIET_LOGGERS = ("fontTools", "weasyprint.progress")


def template_environment(templates_dir: str | Path) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir)),
                              autoescape=jinja2.select_autoescape(["html"]),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


@contextlib.contextmanager
def source_date_epoch(iso_date: str):
    """Set SOURCE_DATE_EPOCH for the duration: fontTools stamps it, instead of the current
    time, into the 'head' table of every font subset it embeds."""
    epoch = int(datetime.fromisoformat(iso_date).replace(tzinfo=timezone.utc).timestamp())
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ.update(SOURCE_DATE_EPOCH=str(epoch))
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ.update(SOURCE_DATE_EPOCH=previous)


@contextlib.contextmanager
def fonttools_subsetting():
    """Subset embedded fonts with fontTools (pure Python, pinned in the lock file) even where
    the system has HarfBuzz's subsetting library (Debian: libharfbuzz-subset0), which WeasyPrint
    prefers when it finds it. The two subsetters write different font bytes, so a PDF that
    reviewers rebuild byte for byte (the evaluation reports) must not depend on whether that
    library is installed; the school reports use HarfBuzz where it is, three times faster."""
    from weasyprint.pdf import fonts

    if not hasattr(fonts, "harfbuzz_subset"):
        raise RuntimeError("weasyprint.pdf.fonts.harfbuzz_subset is gone (WeasyPrint upgraded?): "
                           "fonttools_subsetting() must be adapted to keep the PDFs reproducible")
    saved = fonts.harfbuzz_subset
    fonts.harfbuzz_subset = None
    try:
        yield
    finally:
        fonts.harfbuzz_subset = saved


def render_pdf(html: str, base_url: str | Path, iso_date: str, font_config=None, portable: bool = False,
               info: DocumentInfo | None = None, terms: dict | None = None) -> bytes:
    """HTML -> tagged PDF bytes (``layout.render_report``: typeset by the rules of ``info``'s
    language with the abbreviations ``terms`` expanded at first use, pages balanced, PDF/UA-1
    with ``info`` as metadata), byte-stable: a document identifier derived from the content and
    font timestamps from the report date. ``font_config`` (a WeasyPrint FontConfiguration) lets
    successive documents of one process share the fonts they load. ``portable``: fonts subset
    by fontTools whatever the system libraries (``fonttools_subsetting``), for PDFs that are
    rebuilt byte for byte on other machines."""
    identifier = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode()
    with source_date_epoch(iso_date), (fonttools_subsetting() if portable else contextlib.nullcontext()):
        return render_report(html, base_url, info, identifier, font_config, terms)


def publish_pdf(html: str, templates_dir: str | Path, report_date: str, config: dict, lang: str, title: str,
                terms: dict[str, str], font_config=None, portable: bool = False) -> bytes:
    """The one way a report of the project (the evaluation report, a school's report, the power
    analysis) becomes a PDF: typeset by the rules of ``lang`` with ``terms`` expanded at first
    use, pages balanced, tagged PDF/UA-1 with ``title``, ``lang`` and, as its Author, the
    organisations of ``config``'s ``reports.authors`` (``render_pdf``)."""
    info = DocumentInfo(title, lang, organisations(config, lang))
    return render_pdf(html, templates_dir, report_date, font_config, portable, info, terms)


def demo_secret_used(inputs: dict) -> bool:
    """Whether the participant keys were made with the public demo secret (written by ingest):
    every report then says so on its first page."""
    return bool(json.loads(Path(inputs["pseudonymisation"]).read_text(encoding="utf-8"))["demo_secret"])


def quiet_font_loggers() -> None:
    """Keep fontTools' per-table DEBUG lines out of the step logs. WeasyPrint raises the
    fontTools logger to DEBUG while it subsets a font and re-logs its warnings under its own
    name, so the records are stopped from reaching the log's handler instead."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.propagate = False

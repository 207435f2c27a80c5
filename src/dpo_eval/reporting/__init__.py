"""Reports: tables of results/tables -> findings -> sentences -> Jinja2 HTML in the reader's
language -> PDF (WeasyPrint).

- ``findings``: the result tables turned into structured findings (decisions, Holm-consistent
  intervals, status of every fit); the API is documented there;
- ``sentences`` and ``design``: every sentence worded from a finding;
- which aggregates may be shown to whom is decided once for the whole release, before any
  report is built (``dpo_eval.release.manifest``, ``release_cells``; read through ``release_view``);
- ``evaluation_context`` and ``institution_context``: the templates' contexts, table by table;
- ``formatting``, ``labels``, ``provenance``: numbers and words for the locale, code labels,
  digests and versions;
- ``render`` and ``build``: HTML to byte-stable PDFs, and the report-building steps.

This ``__init__`` imports nothing, so that importing one module does not load the others.
"""

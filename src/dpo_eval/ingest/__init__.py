"""Ingest: raw survey exports -> pseudonymised, analysis-ready tables with an audit trail.

Personal data (names, e-mails, phones) are read here to confirm near-miss code matches and are
dropped before anything is written: no output of this package holds them.

By concern: ``columns`` (which column is which field or item), ``values`` (cells as data),
``waves`` (one wave's exports as submissions), ``identities`` (codes, matching, cohorts,
duplicates), ``assembly`` (the ingest tables), ``needs`` (instrument B), ``registry``.
"""

from dpo_eval.ingest.assembly import IngestResult, ingest_competencies
from dpo_eval.ingest.columns import ColumnMap, closest_header, looks_like_question, map_columns
from dpo_eval.ingest.needs import ingest_needs
from dpo_eval.ingest.registry import REGISTRY_COLUMNS, REGISTRY_OPTIONAL, load_registry
from dpo_eval.ingest.values import TIME_FORMATS
from dpo_eval.ingest.waves import PERSONAL_FIELDS, REQUIRED_FIELDS, read_wave

__all__ = ["ColumnMap", "IngestResult", "PERSONAL_FIELDS", "REGISTRY_COLUMNS", "REGISTRY_OPTIONAL",
           "REQUIRED_FIELDS", "TIME_FORMATS", "closest_header", "ingest_competencies",
           "ingest_needs", "load_registry", "looks_like_question", "map_columns", "read_wave"]

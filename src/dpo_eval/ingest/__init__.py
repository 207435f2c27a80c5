"""Ingest: raw survey exports -> pseudonymised, analysis-ready tables with an audit trail.

Personal data are read only here: names and e-mails confirm near-miss code matches; they, and
any phone numbers, are dropped before anything is written: no output of this package holds
them.

By concern: ``columns`` (which column is which field or item), ``values`` (cells as data),
``waves`` (one wave's exports as submissions), ``identities`` (codes, matching, cohorts,
duplicates), ``assembly`` (the ingest tables), ``needs`` (instrument B). The institutions
registry is read by ``dpo_eval.core.registry``, the one reader every step uses.
"""

from dpo_eval.ingest.assembly import IngestResult, ingest_competencies
from dpo_eval.ingest.columns import ColumnMap, closest_header, looks_like_question, map_columns
from dpo_eval.ingest.needs import ingest_needs
from dpo_eval.ingest.values import TIME_FORMATS
from dpo_eval.ingest.waves import REQUIRED_FIELDS, read_wave

__all__ = ["ColumnMap", "IngestResult", "REQUIRED_FIELDS", "TIME_FORMATS", "closest_header",
           "ingest_competencies", "ingest_needs", "looks_like_question", "map_columns", "read_wave"]

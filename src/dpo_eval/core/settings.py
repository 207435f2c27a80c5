"""Typed settings of the pipeline's steps: each step gets exactly the configuration it uses.

workflow/rules/common.smk builds one of these per rule from the validated configuration and
hands it to the rule as ``params:`` in plain form (``as_params()``: only built-in types, which
Snakemake records and compares between runs). A change of a setting therefore reruns the rules
that use it, and nothing else. The step function rebuilds the typed object
(``from_params()``), so that a step cannot read a key its rule does not declare.

Each class maps its fields to the configuration keys they come from (``KEYS``, dotted paths of
config/config.yaml), which is also how the reports print the configuration they were computed
with (``config_items()``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

NOT_SET = object()


def config_value(config: dict, dotted: str, default: Any = NOT_SET) -> Any:
    """The value of a dotted key ("cleaning.careless.policy") of a nested configuration."""
    value = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            if default is NOT_SET:
                raise KeyError(f"configuration key {dotted!r} is missing")
            return default
        value = value[part]
    return value


def _plain(value: Any) -> Any:
    """Lists as tuples and mappings as dicts with sorted keys, recursively: built-in types
    whose repr is stable, so that Snakemake's record of the params is deterministic."""
    if isinstance(value, dict):
        return {key: _plain(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return tuple(_plain(item) for item in value)
    return value


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """{"a.b.c": leaf, ...} of a nested mapping; lists stay whole (they are one setting)."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key in sorted(value):
            flat.update(flatten(f"{prefix}.{key}", value[key]))
        return flat
    return {prefix: value}


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """Base class: fields filled from the configuration keys named in ``KEYS``."""

    KEYS: ClassVar[dict[str, str]] = {}
    # Keys that may be absent from the configuration, with the value then used.
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**{field: _plain(config_value(config, key, cls.DEFAULTS.get(field, NOT_SET)))
                      for field, key in cls.KEYS.items()})

    def as_params(self) -> dict[str, Any]:
        """The settings as built-in types, for a rule's ``params:``."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_params(cls, params: dict[str, Any]):
        return cls(**params)

    def config_items(self) -> dict[str, Any]:
        """Each setting under its dotted configuration key, nested mappings flattened."""
        items: dict[str, Any] = {}
        for field, key in self.KEYS.items():
            items.update(flatten(key, getattr(self, field)))
        return items


@dataclasses.dataclass(frozen=True)
class IngestSettings(StepSettings):
    """Reading, cleaning, matching and pseudonymising the competency questionnaires."""

    waves: dict
    cleaning: dict
    pseudonymisation: dict
    KEYS: ClassVar[dict[str, str]] = {"waves": "waves", "cleaning": "cleaning",
                                      "pseudonymisation": "pseudonymisation"}

    def ingest_config(self) -> dict:
        """The sections that dpo_eval.ingest.ingest_competencies reads."""
        return {"waves": self.waves, "cleaning": self.cleaning}


@dataclasses.dataclass(frozen=True)
class NeedsIngestSettings(StepSettings):
    """Reading and pseudonymising the needs-assessment survey."""

    needs: dict
    pseudonymisation: dict
    unknown_columns: str
    KEYS: ClassVar[dict[str, str]] = {"needs": "needs", "pseudonymisation": "pseudonymisation",
                                      "unknown_columns": "cleaning.unknown_columns"}
    DEFAULTS: ClassVar[dict[str, Any]] = {"unknown_columns": "error"}


@dataclasses.dataclass(frozen=True)
class ScoreSettings(StepSettings):
    """Scale scores and the participant flow down to each domain's model."""

    min_item_share: float
    domains: tuple[str, ...]
    careless_policy: str
    KEYS: ClassVar[dict[str, str]] = {"min_item_share": "analysis.min_item_share",
                                      "domains": "analysis.domains",
                                      "careless_policy": "cleaning.careless.policy"}


@dataclasses.dataclass(frozen=True)
class DomainModelSettings(StepSettings):
    """The primary model of one domain with its effect sizes and sensitivity analyses."""

    covariates: tuple[str, ...]
    careless_policy: str
    KEYS: ClassVar[dict[str, str]] = {"covariates": "analysis.covariates",
                                      "careless_policy": "cleaning.careless.policy"}


@dataclasses.dataclass(frozen=True)
class CombinedModelSettings(StepSettings):
    """The combined model of all domains."""

    domains: tuple[str, ...]
    covariates: tuple[str, ...]
    careless_policy: str
    KEYS: ClassVar[dict[str, str]] = {"domains": "analysis.domains",
                                      "covariates": "analysis.covariates",
                                      "careless_policy": "cleaning.careless.policy"}


@dataclasses.dataclass(frozen=True)
class DisclosureSettings(StepSettings):
    """Disclosure control of the whole release: the threshold, the domains whose entry and exit
    cells decide a school report's level, and the languages of the evaluation report."""

    min_cell: int
    domains: tuple[str, ...]
    languages: tuple[str, ...]
    KEYS: ClassVar[dict[str, str]] = {"min_cell": "reports.min_cell", "domains": "analysis.domains",
                                      "languages": "reports.languages"}


@dataclasses.dataclass(frozen=True)
class InvarianceSettings(StepSettings):
    """Longitudinal measurement invariance: the domains, who is analysed, and the decision rules
    (Chen 2007 cut-offs; see dpo_eval.analysis.invariance)."""

    domains: tuple[str, ...]
    careless_policy: str
    min_n: int
    max_cfi_drop: float
    max_rmsea_rise: float
    max_freed_share: float
    min_cfi: float
    max_rmsea: float
    by_cohort: bool
    KEYS: ClassVar[dict[str, str]] = {"domains": "analysis.domains",
                                      "careless_policy": "cleaning.careless.policy",
                                      "min_n": "analysis.invariance.min_n",
                                      "max_cfi_drop": "analysis.invariance.max_cfi_drop",
                                      "max_rmsea_rise": "analysis.invariance.max_rmsea_rise",
                                      "max_freed_share": "analysis.invariance.max_freed_share",
                                      "min_cfi": "analysis.invariance.min_cfi",
                                      "max_rmsea": "analysis.invariance.max_rmsea",
                                      "by_cohort": "analysis.invariance.by_cohort"}
    DEFAULTS: ClassVar[dict[str, Any]] = {"min_n": 100, "max_cfi_drop": 0.010, "max_rmsea_rise": 0.015,
                                          "max_freed_share": 0.5, "min_cfi": 0.90, "max_rmsea": 0.08,
                                          "by_cohort": True}


@dataclasses.dataclass(frozen=True)
class ReportSettings(StepSettings):
    """What a report prints from the configuration: the study's title and program, the report
    date, the domains in the order reported, and the reports section (disclosure control and
    the like; the list of languages only decides which reports exist)."""

    study: dict
    domains: tuple[str, ...]
    reports: dict
    KEYS: ClassVar[dict[str, str]] = {"study": "study", "domains": "analysis.domains",
                                      "reports": "reports"}

    @classmethod
    def from_config(cls, config: dict):
        settings = super().from_config(config)
        # Not the languages (a school's report is in its registry language), nor the batch size
        # (how the reports are split into jobs does not change a report).
        reports = {k: v for k, v in settings.reports.items() if k not in ("languages", "batch_size")}
        return dataclasses.replace(settings, reports=reports)

    def report_config(self, codebook: str, computed_with: dict | None = None) -> dict:
        """The configuration as dpo_eval.reporting reads it, holding only these settings (and,
        for the provenance appendix, the settings the tables were computed with)."""
        config = {"codebook": str(codebook), "study": self.study,
                  "analysis": {"domains": list(self.domains)}, "reports": self.reports}
        if computed_with is not None:
            config["computed_with"] = computed_with
        return config


@dataclasses.dataclass(frozen=True)
class ReportAuthorSettings(StepSettings):
    """The authors of the reports and their organisations (the PDFs' Author field), for a
    report made outside the pipeline (the power analysis of workflow/simulation.smk)."""

    authors: list
    KEYS: ClassVar[dict[str, str]] = {"authors": "reports.authors"}


@dataclasses.dataclass(frozen=True)
class InstitutionReportSettings(StepSettings):
    """What an institution's report prints from the configuration: the program (not the
    study's title: the report has its own), the report date, the domains and the reports
    section (without the list of languages: a school's report is in its registry language)."""

    program: dict
    report_date: str
    domains: tuple[str, ...]
    reports: dict
    KEYS: ClassVar[dict[str, str]] = {"program": "study.program", "report_date": "study.report_date",
                                      "domains": "analysis.domains", "reports": "reports"}

    @classmethod
    def from_config(cls, config: dict):
        settings = super().from_config(config)
        # Not the languages (a school's report is in its registry language), nor the batch size
        # (how the reports are split into jobs does not change a report).
        reports = {k: v for k, v in settings.reports.items() if k not in ("languages", "batch_size")}
        return dataclasses.replace(settings, reports=reports)

    def report_config(self, codebook: str) -> dict:
        """The configuration as dpo_eval.reporting reads it, holding only these settings."""
        return {"codebook": str(codebook),
                "study": {"program": self.program, "report_date": self.report_date},
                "analysis": {"domains": list(self.domains)}, "reports": self.reports}


@dataclasses.dataclass(frozen=True)
class ReportBatchSettings(StepSettings):
    """How many schools one school-report job renders (the workflow's scatter, not a report
    setting: every batch size gives the same reports)."""

    batch_size: int
    KEYS: ClassVar[dict[str, str]] = {"batch_size": "reports.batch_size"}
    DEFAULTS: ClassVar[dict[str, Any]] = {"batch_size": 250}


@dataclasses.dataclass(frozen=True)
class OutboxSettings(StepSettings):
    """The sender of the e-mails, the report date that dates them, and the schools that are
    sent nothing (every other school needs a recipient)."""

    sender: str
    sender_name: str
    report_date: str
    no_recipient: tuple[str, ...] = ()
    KEYS: ClassVar[dict[str, str]] = {"sender": "delivery.sender",
                                      "sender_name": "delivery.sender_name",
                                      "report_date": "study.report_date",
                                      "no_recipient": "delivery.no_recipient"}
    DEFAULTS: ClassVar[dict[str, Any]] = {"no_recipient": ()}

    def delivery_config(self) -> dict:
        """The configuration as dpo_eval.delivery.outbox.write_outbox reads it."""
        return {"delivery": {"sender": self.sender, "sender_name": self.sender_name,
                             "no_recipient": list(self.no_recipient)},
                "study": {"report_date": self.report_date}}


# The settings of every analysis step, in pipeline order: the provenance appendix of the
# evaluation report prints them, as the configuration its tables were computed with.
ANALYSIS_SETTINGS = (IngestSettings, NeedsIngestSettings, ScoreSettings, DomainModelSettings,
                     CombinedModelSettings, InvarianceSettings)


def computed_with(config: dict) -> dict[str, Any]:
    """Every configuration key the tables of a report depend on, with its value."""
    items: dict[str, Any] = {}
    for settings_class in ANALYSIS_SETTINGS:
        items.update(settings_class.from_config(config).config_items())
    return dict(sorted(items.items()))

"""Findings: the result tables turned into structured statements, before any wording.

Every sentence of the evaluation report and of the school reports is worded
(``dpo_eval.reporting.sentences``) from one of these findings, never from a table or a
template alone, so that the decisions can be tested without rendering a PDF.

API (pure functions of the tables under ``results/tables`` and the configuration)::

    evaluation_findings(tables, config) -> EvaluationFindings
        .domains      tuple[DomainFinding]     the primary DiD of every domain (confirmatory)
        .verdict      "supported" | "partial" | "not_demonstrated"
        .opposite     domains whose program cohort gained significantly less
        .sensitivity  {analysis: tuple[SecondaryFinding]}  careless_excluded, completers,
                      then_baseline (robustness checks of the primary result)
        .followup     tuple[SecondaryFinding]  pre to follow-up (exploratory)
        .moderation   tuple[SecondaryFinding]  moderation by communication quality (exploratory)
        .shift        tuple[SecondaryFinding]  response shift of the program cohort (exploratory)
        .combined     SecondaryFinding         the combined model of all domains (exploratory)
        .needs        NeedsFinding
        .study        StudyFinding             hypothesis, program, waves, sample, attrition
        .checks       ChecksFinding            convergence and singularity of every fit
        .invariance   tuple[InvarianceFinding] measurement invariance between entry and exit

The rules, each written once:

- Multiplicity: every family (the primary domains; each secondary analysis across the
  domains; the response shift across the domains; the needs areas) is Holm-adjusted by
  ``dpo_eval.analysis.multiplicity.holm``; significance is ``multiplicity.significant(p_holm)``; the
  interval printed beside a result is the Holm-consistent interval
  (``multiplicity.holm_intervals``), which excludes zero exactly when the result is significant.
- Status of a result (``status``): ``not_estimable`` (the data could not support the model),
  ``not_converged`` (the optimiser did not reach a stationary point), else ``positive`` or
  ``negative`` (significant after Holm, by the sign of the estimate) or ``null`` (not
  significant). Only ``positive``/``negative``/``null`` findings are ``usable``: the others
  produce a sentence saying that no result is stated. A singular fit stays usable and is
  flagged (``singular``).
- Effect size: the magnitude word comes from d_ppc2 (Morris 2008), the standardised effect of
  the DiD table, by Cohen's (1988) benchmarks (below 0.2 negligible, 0.5 small, 0.8 medium,
  else large; ``effect_magnitude``), and the sentence names d_ppc2.
- Agreement of a sensitivity analysis with the primary result: both usable and the same
  status (both judged with Holm within their own family and the Holm-consistent interval).
- Exploratory analyses (follow-up, moderation, response shift, combined model) are labelled
  ``exploratory``; they never decide the verdict.
- Measurement invariance: the highest level the decision rules of
  ``dpo_eval.analysis.invariance`` support (``level_held``) for all participants, and for each
  cohort fitted on its own; means may be compared across the waves under scalar and, for the
  latent means, partial scalar invariance. It qualifies the gains; it does not change the verdict.

Adding a finding (e.g. measurement invariance): write a pure function from its table(s) to a
frozen dataclass here, add a field to ``EvaluationFindings`` filled in
``evaluation_findings``, and its sentence rule in ``sentences.py``; test both in
``tests/test_findings.py`` without rendering.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd

from dpo_eval.analysis.invariance import ALL_PARTICIPANTS, level_held
from dpo_eval.analysis.multiplicity import holm, holm_intervals, significant
from dpo_eval.core.study import COHORTS, WAVES

POSITIVE, NEGATIVE, NULL = "positive", "negative", "null"
NOT_ESTIMABLE, NOT_CONVERGED = "not_estimable", "not_converged"
USABLE = (POSITIVE, NEGATIVE, NULL)
SENSITIVITY_ANALYSES = ("careless_excluded", "completers", "then_baseline")
EXPLORATORY_ANALYSES = ("followup", "moderation_communication", "response_shift", "combined")


@dataclasses.dataclass(frozen=True)
class DomainFinding:
    """The primary (confirmatory) DiD of one domain."""

    domain: str
    status: str
    estimate: float
    conf_low: float          # Holm-consistent interval
    conf_high: float
    p_value: float
    p_holm: float
    d: float                 # d_ppc2 (Morris 2008)
    d_conf_low: float
    d_conf_high: float
    magnitude: str           # effect_magnitude(d)
    singular: bool
    n_participants: int
    n_institutions: int

    @property
    def usable(self) -> bool:
        return self.status in USABLE


@dataclasses.dataclass(frozen=True)
class SecondaryFinding:
    """One secondary analysis of one domain (or of all domains: the combined model)."""

    analysis: str
    domain: str
    status: str
    exploratory: bool
    estimable: bool
    converged: bool | None
    singular: bool | None
    estimate: float | None = None
    conf_low: float | None = None    # Holm-consistent within the analysis's family
    conf_high: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    family_size: int = 0             # tests in the Holm family
    agrees_with_primary: bool | None = None
    n_by_cohort: tuple = ()          # ((cohort, respondents), ...) where the finding needs it
    note: str = ""

    @property
    def usable(self) -> bool:
        return self.status in USABLE


@dataclasses.dataclass(frozen=True)
class NeedsFinding:
    top_areas: tuple             # ((stakeholder group, (area, area)), ...) by rank
    differing_areas: tuple       # areas whose groups differ (Holm across the areas)
    untestable_areas: tuple      # areas without a test (one group or no variation)


@dataclasses.dataclass(frozen=True)
class StudyFinding:
    """What the design section and the limitations state, from the configuration and the
    flow and sample tables."""

    # Texts by language ({"ru": ..., "en": ...}) as configured, chosen when worded; None if absent.
    hypothesis: dict | None
    primary_outcome: dict | None
    program_content: dict | None
    program_hours: int | None
    comparison_course: dict | None
    wave_dates: tuple            # ((wave, ISO date), ...) in wave order
    followup_months: float | None  # months from the exit to the follow-up wave
    schools: tuple               # ((cohort, schools), ...)
    participants: tuple          # ((cohort, participants), ...)
    analysed: tuple              # ((wave, cohort, participants analysed), ...)
    followup_share: tuple        # ((cohort, share of the entry participants at follow-up), ...)


@dataclasses.dataclass(frozen=True)
class ChecksFinding:
    primary_not_converged: tuple
    primary_singular: tuple
    primary_not_identifiable: tuple
    secondary_not_converged: tuple  # ((analysis, domain), ...)
    secondary_singular: tuple
    secondary_not_estimable: tuple


@dataclasses.dataclass(frozen=True)
class InvarianceFinding:
    """Longitudinal measurement invariance of one domain's items (all participants): ``level``
    is scalar, partial_scalar, metric, configural, none (the configural model fits poorly) or
    not_estimable (``reason``: too_few, not_converged or improper); ``cohorts`` the levels of
    the cohorts fitted on their own, ((cohort, level or reason), ...)."""

    domain: str
    level: str
    n: int
    freed_items: tuple = ()
    reason: str = ""
    cfi: float | None = None       # of the configural model, for a level of "none"
    rmsea: float | None = None
    cohorts: tuple = ()

    @property
    def means_comparable(self) -> bool:
        return self.level in ("scalar", "partial_scalar")

    @property
    def assessed(self) -> bool:
        return self.level != NOT_ESTIMABLE


@dataclasses.dataclass(frozen=True)
class EvaluationFindings:
    domains: tuple
    verdict: str
    opposite: tuple
    sensitivity: dict
    followup: tuple
    moderation: tuple
    shift: tuple
    combined: SecondaryFinding
    needs: NeedsFinding
    study: StudyFinding
    checks: ChecksFinding
    invariance: tuple = ()

    @property
    def gains(self) -> tuple:
        """Domains where a larger gain of the program cohort is shown."""
        return tuple(f.domain for f in self.domains if f.status == POSITIVE)


# --------------------------------------------------------------------------- rules


def decide(estimate: float, p_holm: float) -> str:
    """positive / negative when significant after Holm (by the sign), else null."""
    if significant(p_holm):
        return POSITIVE if estimate > 0 else NEGATIVE
    return NULL


def fit_status(estimable: bool, converged) -> str | None:
    """not_estimable or not_converged where no result may be stated, else None."""
    if not estimable:
        return NOT_ESTIMABLE
    if converged is not None and not bool(converged):
        return NOT_CONVERGED
    return None


def effect_magnitude(d: float) -> str:
    """Cohen's (1988) conventional benchmarks for a standardised difference |d|: below 0.2
    negligible, below 0.5 small, below 0.8 medium, otherwise large."""
    size = abs(d)
    return "negligible" if size < 0.2 else "small" if size < 0.5 else "medium" if size < 0.8 else "large"


def verdict(domains: tuple) -> str:
    """supported: a larger gain shown in every domain; partial: in some; else not_demonstrated."""
    shown = [f for f in domains if f.status == POSITIVE]
    if shown and len(shown) == len(domains):
        return "supported"
    return "partial" if shown else "not_demonstrated"


def _flag(value) -> bool | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value):
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


# --------------------------------------------------------------------------- findings


def domain_findings(did: pd.DataFrame, checks: pd.DataFrame, domains: list[str]) -> tuple:
    """The primary DiD per domain with its Holm-consistent interval, status and magnitude."""
    table = holm_intervals(did.set_index("domain").loc[domains].reset_index())
    status = checks.set_index("domain")
    out = []
    for r in table.itertuples():
        converged = _flag(status.loc[r.domain, "converged"]) if r.domain in status.index else None
        out.append(DomainFinding(
            domain=r.domain, status=fit_status(True, converged) or decide(r.estimate, r.p_holm),
            estimate=float(r.estimate), conf_low=float(r.conf_low_holm), conf_high=float(r.conf_high_holm),
            p_value=float(r.p_value), p_holm=float(r.p_holm), d=float(r.d_ppc2),
            d_conf_low=float(r.d_conf_low), d_conf_high=float(r.d_conf_high), magnitude=effect_magnitude(r.d_ppc2),
            singular=bool(_flag(status.loc[r.domain, "singular"])) if r.domain in status.index else False,
            n_participants=int(r.n_participants), n_institutions=int(r.n_institutions)))
    return tuple(out)


def secondary_findings(rows: pd.DataFrame, analysis: str, domains: list[str], primary: tuple = (),
                       n_by_cohort: dict | None = None) -> tuple:
    """One analysis across ``domains`` (rows of the sensitivity table): each row's status,
    Holm within the family of the estimable rows, the Holm-consistent interval, and, for a
    sensitivity analysis, whether it agrees with the primary finding of its domain."""
    rows = rows[(rows["analysis"] == analysis) & rows["domain"].isin(domains)].set_index("domain")
    family = rows.reindex(domains)
    estimable = family["estimate"].notna() & family.get("estimable", pd.Series(True, index=family.index)).map(
        lambda v: _flag(v) is not False)
    family = family.assign(p_value=family["p_value"].where(estimable), estimable=estimable)
    family["p_holm"] = holm(family["p_value"])
    family = holm_intervals(family.reset_index()).set_index("domain")
    by_domain = {f.domain: f for f in primary}
    out = []
    for domain in domains:
        r = family.loc[domain]
        status = fit_status(bool(r["estimable"]), _flag(r.get("converged"))) or decide(r["estimate"], r["p_holm"])
        usable = status in USABLE
        main = by_domain.get(domain)
        agrees = (main.status == status) if (main is not None and usable and main.usable
                                             and analysis in SENSITIVITY_ANALYSES) else None
        out.append(SecondaryFinding(
            analysis=analysis, domain=domain, status=status, exploratory=analysis in EXPLORATORY_ANALYSES,
            estimable=bool(r["estimable"]), converged=_flag(r.get("converged")), singular=_flag(r.get("singular")),
            estimate=float(r["estimate"]) if usable else None,
            conf_low=float(r["conf_low_holm"]) if usable else None,
            conf_high=float(r["conf_high_holm"]) if usable else None,
            p_value=float(r["p_value"]) if usable else None, p_holm=float(r["p_holm"]) if usable else None,
            family_size=int(family["p_value"].notna().sum()), agrees_with_primary=agrees,
            n_by_cohort=tuple((n_by_cohort or {}).get(domain, ())),
            note=str(r.get("note", "")) if pd.notna(r.get("note", "")) else ""))
    return tuple(out)


def combined_finding(sensitivity: pd.DataFrame) -> SecondaryFinding:
    """The combined model of all domains (a family of one)."""
    rows = sensitivity[sensitivity["analysis"] == "combined"].assign(domain="all")
    if rows.empty:
        rows = pd.DataFrame([{"analysis": "combined", "domain": "all", "estimate": np.nan, "std_error": np.nan,
                              "df": np.nan, "p_value": np.nan, "estimable": False}])
    return secondary_findings(rows, "combined", ["all"])[0]


def shift_findings(shift: pd.DataFrame, domains: list[str]) -> tuple:
    """The program cohort's response shift (then minus pre) per domain: a paired t-test with
    n - 1 df, Holm across the domains."""
    rows = shift[shift["cohort"] == "program"].assign(analysis="response_shift", estimable=True, converged=True)
    rows = rows.assign(df=rows["n"] - 1)
    return secondary_findings(rows, "response_shift", [d for d in domains if d in set(rows["domain"])])


def followup_respondents(descriptives: pd.DataFrame, domains: list[str]) -> dict:
    """Respondents per cohort at the follow-up wave, per domain."""
    rows = descriptives[descriptives["wave"] == "followup"]
    return {d: tuple((c, int(rows.loc[(rows["domain"] == d) & (rows["cohort"] == c), "n"].sum()))
                     for c in COHORTS) for d in domains}


def needs_finding(needs: pd.DataFrame, tests: pd.DataFrame) -> NeedsFinding:
    top = tuple((group, tuple(needs[needs["stakeholder"] == group].sort_values(["rank", "area"]).head(2)["area"]))
                for group in ("school", "iro", "university") if group in set(needs["stakeholder"]))
    return NeedsFinding(top_areas=top,
                        differing_areas=tuple(tests.loc[significant(tests["p_holm"]), "area"]),
                        untestable_areas=tuple(tests.loc[tests["p_holm"].isna(), "area"]))


def months_between(first: str, second: str) -> float:
    """Calendar months between two ISO dates (days / 30.44), one decimal."""
    days = (date.fromisoformat(str(second)) - date.fromisoformat(str(first))).days
    return round(days / 30.44, 1)


def study_finding(config: dict, sample: pd.DataFrame, flow: pd.DataFrame) -> StudyFinding:
    """The design as configured (``study`` section: hypothesis, primary outcome, program,
    comparison course, wave dates) and the sample: schools and participants per cohort,
    participants analysed per wave, and the share of the entry participants at follow-up."""
    study = config.get("study", {})
    dates = study.get("wave_dates", {}) or {}
    waves = tuple((w, str(dates[w])) for w in WAVES if dates.get(w))
    months = months_between(dates["post"], dates["followup"]) if dates.get("post") and dates.get("followup") else None
    count = lambda what: tuple((c, int(sample.loc[(sample["characteristic"] == what)  # noqa: E731
                                                   & (sample["cohort"] == c), "n"].sum())) for c in COHORTS)
    per_wave = flow[flow["wave"].isin(WAVES)]
    analysed = tuple((r["wave"], r["cohort"], int(r["analysed"])) for r in per_wave.to_dict(orient="records"))
    lookup = {(w, c): n for w, c, n in analysed}
    share = tuple((c, lookup.get(("followup", c), 0) / lookup[("pre", c)]) for c in COHORTS
                  if lookup.get(("pre", c)) and ("followup", c) in lookup)
    program = study.get("program_description", {}) or {}
    return StudyFinding(hypothesis=study.get("hypothesis"), primary_outcome=study.get("primary_outcome"),
                        program_content=program.get("content"), program_hours=program.get("hours"),
                        comparison_course=program.get("comparison"), wave_dates=waves, followup_months=months,
                        schools=count("institutions"), participants=count("participants"), analysed=analysed,
                        followup_share=share)


def checks_finding(checks: pd.DataFrame, secondary: list[SecondaryFinding], domains: list[str]) -> ChecksFinding:
    checks = checks.set_index("domain").reindex(domains)
    flagged = lambda column, want: tuple(d for d in domains if _flag(checks.loc[d, column]) is want)  # noqa: E731
    identifiable = (tuple(d for d in domains if _flag(checks.loc[d, "variance_components_identifiable"]) is False)
                    if "variance_components_identifiable" in checks else ())
    return ChecksFinding(
        primary_not_converged=flagged("converged", False), primary_singular=flagged("singular", True),
        primary_not_identifiable=identifiable,
        secondary_not_converged=tuple((f.analysis, f.domain) for f in secondary if f.status == NOT_CONVERGED),
        secondary_singular=tuple((f.analysis, f.domain) for f in secondary if f.usable and f.singular),
        secondary_not_estimable=tuple((f.analysis, f.domain) for f in secondary if f.status == NOT_ESTIMABLE))


def _level_or_reason(table: pd.DataFrame, domain: str, group: str) -> str:
    """The level held, or for an unassessed group the status of its configural model."""
    level = level_held(table, domain, group).level
    if level != NOT_ESTIMABLE:
        return level
    rows = table[(table["domain"] == domain) & (table["group"] == group) & (table["model"] == "configural")]
    return str(rows["status"].iloc[0])


def invariance_findings(table: pd.DataFrame, domains: list[str]) -> tuple:
    """One InvarianceFinding per domain of ``invariance.csv`` (in ``domains`` order)."""
    out = []
    for domain in [d for d in domains if d in set(table["domain"])]:
        rows = table[table["domain"] == domain]
        held = level_held(table, domain)
        configural = rows[(rows["group"] == ALL_PARTICIPANTS) & (rows["model"] == "configural")].iloc[0]
        cohorts = tuple((group, _level_or_reason(table, domain, group))
                        for group in dict.fromkeys(rows["group"]) if group != ALL_PARTICIPANTS)
        ok = configural["status"] == "ok"
        out.append(InvarianceFinding(
            domain=domain, level=held.level, n=held.n, freed_items=held.freed_items,
            reason="" if ok else str(configural["status"]),
            cfi=float(configural["cfi"]) if ok else None, rmsea=float(configural["rmsea"]) if ok else None,
            cohorts=cohorts))
    return tuple(out)


def evaluation_findings(tables: dict[str, pd.DataFrame], config: dict) -> EvaluationFindings:
    """All findings of the evaluation, table by table (see the module docstring)."""
    domains = list(config["analysis"]["domains"])
    primary = domain_findings(tables["did"], tables["model_checks"], domains)
    sens = tables["sensitivity"]
    sensitivity = {a: secondary_findings(sens, a, domains, primary) for a in SENSITIVITY_ANALYSES}
    followup = secondary_findings(sens, "followup", domains,
                                  n_by_cohort=followup_respondents(tables["descriptives"], domains))
    moderation = secondary_findings(sens, "moderation_communication", domains)
    combined = combined_finding(sens)
    shift = shift_findings(tables["response_shift"], domains)
    secondary = [f for group in (*sensitivity.values(), followup, moderation, (combined,)) for f in group]
    return EvaluationFindings(
        domains=primary, verdict=verdict(primary), opposite=tuple(f.domain for f in primary if f.status == NEGATIVE),
        sensitivity=sensitivity, followup=followup, moderation=moderation, shift=shift, combined=combined,
        needs=needs_finding(tables["needs"], tables["needs_tests"]),
        study=study_finding(config, tables["sample"], tables["flow"]),
        checks=checks_finding(tables["model_checks"], secondary, domains),
        invariance=invariance_findings(tables["invariance"], domains))

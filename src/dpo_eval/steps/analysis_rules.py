"""Analysis steps: scale scores, reliability, needs analysis, the mixed model of each domain,
the combined model, and the tidy tables of all models."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from dpo_eval.analysis import aggregates

from dpo_eval.analysis import models

from dpo_eval.analysis import sensitivity
from dpo_eval.analysis import needs as needs_module
from dpo_eval.analysis.invariance import Criteria, invariance_table, level_held
from dpo_eval.core.codebook import load_codebook
from dpo_eval.core.io import read_csv, write_outputs
from dpo_eval.analysis.reliability import reliability_table
from dpo_eval.analysis.scoring import descriptives, model_flow, scale_scores
from dpo_eval.core.settings import CombinedModelSettings, DomainModelSettings, InvarianceSettings, ScoreSettings

log = logging.getLogger("dpo_eval")


def score(settings: ScoreSettings, codebook: str | Path, responses: str | Path,
          flow_waves: str | Path, output: dict) -> None:
    """Scale scores, their descriptives, and the participant flow down to each domain's model."""
    codebook = load_codebook(codebook)
    items_per_domain = {domain: len(codebook.items_of(domain)) for domain in codebook.domains}
    scores = scale_scores(read_csv(responses), items_per_domain, settings.min_item_share)
    flow = model_flow(read_csv(flow_waves), scores, list(settings.domains), settings.careless_policy)
    write_outputs({output["scores"]: scores, output["descriptives"]: descriptives(scores),
                   output["flow"]: flow, output["sample"]: aggregates.sample_description(scores),
                   output["municipalities"]: aggregates.municipality_participation(scores),
                   output["score_benchmarks"]: aggregates.score_benchmarks(scores)})


def analysis_scores(careless_policy: str, scores: str | Path) -> pd.DataFrame:
    """Scores entering the models: careless respondents removed when the policy says exclude."""
    table = read_csv(scores)
    if careless_policy == "exclude":
        table = table[~table["careless"].astype(bool)]
    return table


def fit_domain(settings: DomainModelSettings, scores: str | Path, domain: str, output: dict) -> None:
    """The primary model of one domain with its checks, effect sizes and sensitivity analyses."""
    covariates = list(settings.covariates)
    table = analysis_scores(settings.careless_policy, scores)
    frame = models.model_frame(table, domain, covariates)
    fit = models.fit_primary(frame, covariates)
    checks = fit["checks"]
    log.info("%s: REML criterion %.6f (max scaled gradient %.1e), singular=%s, converged=%s; "
             "n=%d obs / %d participants / %d institutions", domain, checks["reml_criterion"],
             checks["scaled_gradient"], checks["singular"], checks["converged"], fit["n_obs"],
             fit["n_participants"], fit["n_institutions"])
    if not checks["converged"]:
        log.warning("%s: the optimiser did not reach a stationary point (%s); the estimates are "
                    "reported with this flag in model_checks.csv", domain, checks["optimizer_message"])
    if not checks["variance_components_identifiable"]:
        log.warning("%s: variance components not identifiable: %s", domain,
                    checks["identifiability_warning"])
    if checks["singular"]:
        log.warning("%s: singular fit, variance component(s) %s estimated as zero", domain,
                    checks["zero_variance_components"])
    r_frame = fit.pop("r_frame")
    fit["effect_sizes"] = sensitivity.domain_effect_sizes(table, domain)
    fit["response_shift"] = sensitivity.response_shift(table, domain)
    fit["sensitivity"] = sensitivity.sensitivity_analyses(table, domain, covariates)
    warn_secondary_fits(fit["sensitivity"])
    write_outputs({output["fit"]: {"domain": domain, **fit}, output["frame"]: r_frame})


def warn_secondary_fits(rows: list[dict]) -> None:
    """Flag in the log every secondary fit (sensitivity, moderation, combined) that could not
    be estimated, did not converge or is singular, as for the primary model."""
    for row in rows:
        name = f"{row['domain']}: {row['analysis']}"
        if not row["estimable"]:
            log.warning("%s: %s", name, row["note"])
        elif not row["converged"]:
            log.warning("%s: the optimiser did not reach a stationary point (%s); the report states "
                        "no result for this analysis", name, row.get("optimizer_message", ""))
        elif row["singular"]:
            log.warning("%s: singular fit (a variance component estimated as zero)", name)


def fit_combined(settings: CombinedModelSettings, scores: str | Path, output: str | Path) -> None:
    """Secondary analysis: one model of all domains with a common difference-in-differences."""
    table = analysis_scores(settings.careless_policy, scores)
    result = sensitivity.combined_model(table, list(settings.domains), list(settings.covariates))
    log.info("combined model: DiD %.4f [%.4f, %.4f]", result["estimate"], result["conf_low"],
             result["conf_high"])
    warn_secondary_fits([result])
    write_outputs({output: result})


def reliability(codebook: str | Path, responses: str | Path, output: str | Path) -> None:
    """Reliability of every domain of the codebook, per wave."""
    table = read_csv(responses)
    domains = list(load_codebook(codebook).domains)
    write_outputs({output: reliability_table(table, domains)})


def invariance(settings: InvarianceSettings, codebook: str | Path, responses: str | Path,
               output: dict) -> None:
    """Longitudinal measurement invariance of every domain's items between entry and exit."""
    codebook = load_codebook(codebook)
    table = read_csv(responses)
    if settings.careless_policy == "exclude":
        table = table[~table["careless"].astype(bool)]
    items_of = {domain: [item.id for item in codebook.items_of(domain)] for domain in settings.domains}
    criteria = Criteria(settings.min_n, settings.max_cfi_drop, settings.max_rmsea_rise,
                        settings.max_freed_share, settings.min_cfi, settings.max_rmsea)
    result, loadings = invariance_table(table, items_of, criteria, settings.by_cohort)
    for domain, group in result[["domain", "group"]].drop_duplicates().itertuples(index=False):
        held = level_held(result, domain, group)
        log.info("%s, %s (n = %d): %s%s%s", domain, group, held.n, held.level,
                 f", freed intercepts {', '.join(held.freed_items)}" if held.freed_items else "",
                 f" ({held.reason})" if held.reason else "")
    write_outputs({output["table"]: result, output["loadings"]: loadings})


def needs_analysis(needs: str | Path, formats: str | Path, output: dict) -> None:
    """Importance of need areas and preferred formats by stakeholder group."""
    ratings = read_csv(needs)
    write_outputs({output["needs"]: needs_module.importance_summary(ratings),
                   output["needs_benchmarks"]: aggregates.needs_benchmarks(ratings),
                   output["distribution"]: needs_module.likert_distribution(ratings),
                   output["tests"]: needs_module.group_differences(ratings),
                   output["formats"]: needs_module.format_preferences(read_csv(formats))})


def collect_models(fit_paths: list[str | Path], combined_path: str | Path, output: dict) -> None:
    """Tidy tables of all domains; the report reads only these."""
    fits = {}
    for path in fit_paths:
        fit = json.loads(Path(path).read_text(encoding="utf-8"))
        fits[fit["domain"]] = fit
    combined = json.loads(Path(combined_path).read_text(encoding="utf-8"))
    d_ppc2 = {d: next(e for e in f["effect_sizes"] if e["measure"] == "d_ppc2") for d, f in fits.items()}
    fixed = pd.concat([pd.DataFrame(f["fixed_effects"]).assign(domain=d) for d, f in fits.items()])
    variance = pd.concat([pd.DataFrame(f["variance_components"]).assign(domain=d) for d, f in fits.items()])
    checks = pd.DataFrame([{"domain": d, **f["checks"], "n_obs": f["n_obs"],
                            "n_participants": f["n_participants"],
                            "n_institutions": f["n_institutions"]} for d, f in fits.items()])
    effects = pd.DataFrame([e for f in fits.values() for e in f["effect_sizes"]]
                           + [{"domain": d, "cohort": "program vs comparison", "measure": "d_model",
                               **f["standardised_did"], "n": f["n_participants"]}
                              for d, f in fits.items()])
    did = models.did_table(fits, d_ppc2)
    status = checks.set_index("domain")[["converged", "singular"]]
    primary = did.assign(analysis="primary", term=models.DID_TERM, note="all available pre and post scores",
                         estimable=True, converged=did["domain"].map(status["converged"]).astype(bool),
                         singular=did["domain"].map(status["singular"]).astype(bool))
    secondary = sensitivity.family_adjusted(pd.DataFrame([s for f in fits.values() for s in f["sensitivity"]]
                                                         + [combined]))
    sens = pd.concat([primary, secondary], ignore_index=True)
    qq = pd.concat([pd.DataFrame(f["qq"]).assign(domain=d) for d, f in fits.items()])
    write_outputs({
        output["did"]: did,
        output["fixed_effects"]: fixed[["domain", "term", "estimate", "std_error", "df", "statistic",
                                        "p_value", "conf_low", "conf_high"]],
        output["variance_components"]: variance[["domain", "component", "variance", "sd"]],
        output["model_checks"]: checks,
        output["effect_sizes"]: effects[["domain", "cohort", "measure", "estimate", "conf_low",
                                         "conf_high", "n"]],
        output["response_shift"]: pd.DataFrame([r for f in fits.values() for r in f["response_shift"]]),
        output["sensitivity"]: sens[["analysis", "domain", "term", "estimate", "std_error", "df",
                                     "statistic", "p_value", "p_holm", "conf_low", "conf_high",
                                     "n_participants", "n_institutions", "estimable", "converged",
                                     "singular", "note"]],
        output["qq"]: qq[["domain", "kind", "theoretical", "sample"]],
    })

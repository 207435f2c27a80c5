"""The pipeline's steps as plain functions of input and output paths.

Each Snakemake rule calls exactly one of these through a two-line script in workflow/scripts/,
so every step can also be run and tested without Snakemake.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dpo_eval import models
from dpo_eval.codebook import load_codebook
from dpo_eval.ingest import ingest_competencies, ingest_needs, load_registry
from dpo_eval.io import read_csv, write_outputs
from dpo_eval.pseudonymise import load_secret
from dpo_eval.scoring import descriptives, scale_scores

log = logging.getLogger("dpo_eval")


def ingest(config: dict, output: dict, results_dir: str | Path = "results",
           repo_dir: str | Path | None = None) -> None:
    """Raw competency exports -> pseudonymised long responses, respondents, flow and audit."""
    codebook = load_codebook(config["codebook"])
    registry = load_registry(config["registry"])
    secret, origin = load_secret(config["pseudonymisation"], results_dir, repo_dir)
    log.info("pseudonymisation secret: %s", origin)
    result, invalid = ingest_competencies(config, codebook, registry, secret)
    for problem in invalid:
        log.warning("set to missing: %s", problem)
    log.info("responses: %d rows, %d participants", len(result.responses),
             result.responses["participant_key"].nunique())
    write_outputs({
        output["responses"]: result.responses,
        output["respondents"]: result.respondents,
        output["flow"]: result.flow,
        output["match_audit"]: result.match_audit,
        output["duplicates"]: result.duplicates,
        output["invalid_values"]: result.invalid_values,
    })


def ingest_needs_survey(config: dict, output: dict, results_dir: str | Path = "results",
                        repo_dir: str | Path | None = None) -> None:
    """Raw needs-assessment export -> pseudonymised importance ratings and preferred formats."""
    codebook = load_codebook(config["codebook"])
    registry = load_registry(config["registry"])
    secret, _ = load_secret(config["pseudonymisation"], results_dir, repo_dir)
    needs, formats = ingest_needs(config["needs"], codebook, registry, secret)
    log.info("needs assessment: %d respondents", needs["respondent_key"].nunique())
    write_outputs({output["needs"]: needs, output["needs_formats"]: formats})


def score(config: dict, responses: str | Path, output: dict) -> None:
    codebook = load_codebook(config["codebook"])
    items_per_domain = {domain: len(codebook.items_of(domain)) for domain in codebook.domains}
    scores = scale_scores(read_csv(responses), items_per_domain,
                          config["analysis"]["min_item_share"])
    write_outputs({output["scores"]: scores, output["descriptives"]: descriptives(scores)})


def fit_domain(config: dict, scores: str | Path, domain: str, output: str | Path) -> None:
    covariates = config["analysis"]["covariates"]
    table = read_csv(scores)
    if config["cleaning"]["careless"]["policy"] == "exclude":
        table = table[~table["careless"].astype(bool)]
    frame = models.model_frame(table, domain, covariates)
    fit = models.fit_primary(frame, covariates)
    log.info("%s: converged=%s, n=%d obs / %d participants / %d institutions", domain,
             fit["converged"], fit["n_obs"], fit["n_participants"], fit["n_institutions"])
    write_outputs({output: {"domain": domain, **fit}})


def collect_models(fit_paths: list[str | Path], output: dict) -> None:
    fits = {}
    for path in fit_paths:
        fit = pd.read_json(path, typ="series").to_dict()
        fits[fit["domain"]] = fit
    fixed = pd.concat([pd.DataFrame(f["fixed_effects"]).assign(domain=d) for d, f in fits.items()])
    variance = pd.DataFrame([{"domain": d, "component": name, "variance": value}
                             for d, f in fits.items()
                             for name, value in f["variance_components"].items()])
    checks = pd.DataFrame([{"domain": d, "converged": f["converged"], "reml_loglik": f["reml_loglik"],
                            "n_obs": f["n_obs"], "n_participants": f["n_participants"],
                            "n_institutions": f["n_institutions"],
                            "dropped_aliased_terms": ";".join(f["dropped_aliased_terms"])}
                           for d, f in fits.items()])
    write_outputs({
        output["did"]: models.did_table(fits),
        output["fixed_effects"]: fixed[["domain", "term", "estimate", "std_error", "statistic",
                                        "p_value", "conf_low", "conf_high"]],
        output["variance_components"]: variance,
        output["model_checks"]: checks,
    })

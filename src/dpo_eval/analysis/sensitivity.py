"""Effect sizes, response shift and the secondary and sensitivity analyses of a domain."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from dpo_eval.analysis import effect_sizes as es
from dpo_eval.analysis.models import DID_TERM, ModelDataError, contrast, fit_model, model_frame, primary_formula
from dpo_eval.analysis.multiplicity import holm
from dpo_eval.core.study import COHORTS, COMPARISON, MODEL_WAVES, PROGRAM


def paired(scores: pd.DataFrame, domain: str, first: str, second: str) -> pd.DataFrame:
    """Participants with scores at both waves: participant_key, cohort, first, second."""
    subset = scores[(scores["domain"] == domain) & scores["wave"].isin([first, second])]
    wide = subset.pivot_table(index=["participant_key", "cohort"], columns="wave", values="score")
    if first not in wide or second not in wide:
        return pd.DataFrame(columns=["participant_key", "cohort", first, second])
    return wide.dropna(subset=[first, second]).reset_index()


def domain_effect_sizes(scores: pd.DataFrame, domain: str) -> list[dict]:
    """d_ppc2 of completers (program vs comparison), and the within-cohort d_z and d_av."""
    pairs = paired(scores, domain, "pre", "post")
    t = pairs[pairs["cohort"] == PROGRAM]
    c = pairs[pairs["cohort"] == COMPARISON]
    d = es.morris_dppc2(t["pre"].to_numpy(), t["post"].to_numpy(), c["pre"].to_numpy(), c["post"].to_numpy())
    rows = [{"domain": domain, "cohort": "program vs comparison", "measure": "d_ppc2",
             "estimate": d.estimate, "conf_low": d.conf_low, "conf_high": d.conf_high, "n": d.n}]
    for cohort, group in ((PROGRAM, t), (COMPARISON, c)):
        dz = es.cohens_dz(group["pre"].to_numpy(), group["post"].to_numpy())
        rows.append({"domain": domain, "cohort": cohort, "measure": "d_z", "estimate": dz.estimate,
                     "conf_low": dz.conf_low, "conf_high": dz.conf_high, "n": dz.n})
        rows.append({"domain": domain, "cohort": cohort, "measure": "d_av",
                     "estimate": es.cohens_dav(group["pre"].to_numpy(), group["post"].to_numpy()),
                     "conf_low": np.nan, "conf_high": np.nan, "n": len(group)})
    return rows


def response_shift(scores: pd.DataFrame, domain: str) -> list[dict]:
    """Then minus pre per cohort (paired mean difference with t interval), and the difference
    between the cohorts' shifts (Welch)."""
    pairs = paired(scores, domain, "pre", "then")
    rows, shifts = [], {}
    for cohort in COHORTS:
        diff = (pairs.loc[pairs["cohort"] == cohort, "then"] - pairs.loc[pairs["cohort"] == cohort, "pre"]).to_numpy()
        shifts[cohort] = diff
        if len(diff) < 2:
            continue
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        q = stats.t.ppf(0.975, len(diff) - 1)
        rows.append({"domain": domain, "cohort": cohort, "estimate": float(diff.mean()), "std_error": float(se),
                     "conf_low": float(diff.mean() - q * se), "conf_high": float(diff.mean() + q * se),
                     "p_value": float(stats.ttest_1samp(diff, 0.0).pvalue), "n": len(diff)})
    if all(len(v) >= 2 for v in shifts.values()):
        a, b = shifts[PROGRAM], shifts[COMPARISON]
        test = stats.ttest_ind(a, b, equal_var=False)
        ci = test.confidence_interval()
        rows.append({"domain": domain, "cohort": "program - comparison", "estimate": float(a.mean() - b.mean()),
                     "std_error": float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))),
                     "conf_low": float(ci.low), "conf_high": float(ci.high),
                     "p_value": float(test.pvalue), "n": len(a) + len(b)})
    return rows


def communication_quality(scores: pd.DataFrame) -> pd.Series:
    """Institution-level quality of communication: the mean communication score at entry,
    centred on the mean of the institutions."""
    comm = scores[(scores["domain"] == "communication") & (scores["wave"] == "pre")]
    by_institution = comm.groupby("institution")["score"].mean()
    return by_institution - by_institution.mean()


def moderation_frame(scores: pd.DataFrame, domain: str, covariates: list[str], comm: pd.Series) -> pd.DataFrame:
    """The model frame of the moderation analysis: institutions with a communication-quality
    score at entry, with its centred value ``comm_c``."""
    if comm.empty:
        raise ModelDataError("no institution has communication-scale scores at entry (no one answered "
                             "enough of its items), so the moderation by communication quality cannot be estimated")
    return (model_frame(scores[scores["institution"].isin(comm.index)], domain, covariates)
            .assign(comm_c=lambda f: f["institution"].map(comm)))


def fit_status(fit) -> dict:
    """Estimable, converged and singular, recorded for every secondary fit as for the primary
    model (``models.model_checks``): a result that did not converge is reported as such."""
    return {"estimable": True, "converged": bool(fit.converged), "singular": bool(fit.singular),
            "optimizer_message": fit.optimizer_message}


def _row(analysis: str, domain: str, frame: pd.DataFrame, term: str, covariates: list[str],
         extra: str = "", note: str = "") -> dict:
    fit, _, dropped = fit_model(frame, primary_formula(covariates, extra))
    if term not in fit.fixed_names:
        raise ModelDataError(f"the term {term} is aliased with other terms of the model (dropped: "
                             f"{', '.join(dropped)}); the data cannot separate it")
    return {"analysis": analysis, "domain": domain, "term": term, **contrast(fit, term),
            "n_participants": int(frame["participant_key"].nunique()),
            "n_institutions": int(frame["institution"].nunique()), **fit_status(fit), "note": note}


def sensitivity_analyses(scores: pd.DataFrame, domain: str, covariates: list[str]) -> list[dict]:
    """The DiD under alternative samples, baselines and horizons, and the moderation by the
    institution's communication quality (the article's thesis)."""
    analyses = []
    careless = set(scores.loc[scores["careless"].astype(bool) & scores["wave"].isin(MODEL_WAVES),
                              "participant_key"])
    completers = set(paired(scores, domain, "pre", "post")["participant_key"])
    comm = communication_quality(scores)
    specs = [
        ("careless_excluded", lambda: model_frame(scores[~scores["participant_key"].isin(careless)], domain, covariates),
         DID_TERM, "", "participants flagged as careless at pre or post removed"),
        ("completers", lambda: model_frame(scores[scores["participant_key"].isin(completers)], domain, covariates),
         DID_TERM, "", "participants with both pre and post scores"),
        ("then_baseline", lambda: model_frame(scores, domain, covariates, waves=("then", "post")),
         DID_TERM, "", "retrospective 'then' rating as the baseline"),
        ("followup", lambda: model_frame(scores, domain, covariates, waves=("pre", "followup")),
         DID_TERM, "", "gain from pre to the delayed follow-up"),
        ("moderation_communication", lambda: moderation_frame(scores, domain, covariates, comm),
         "post:program:comm_c", " * comm_c",
         "change of the DiD per point of institution-level communication quality at entry"),
    ]
    for analysis, make_frame, term, extra, note in specs:
        try:
            analyses.append(_row(analysis, domain, make_frame(), term, covariates, extra, note))
        except ModelDataError as exc:
            analyses.append({"analysis": analysis, "domain": domain, "term": term, "estimable": False,
                             "converged": None, "singular": None, "note": f"not estimable: {exc}"})
    return analyses


def family_adjusted(rows: pd.DataFrame) -> pd.DataFrame:
    """Secondary analyses with ``p_holm``: Holm-adjusted within the family of each analysis
    (the same analysis across the domains, e.g. the three moderation tests), so that a
    secondary result is judged on the same footing as the primary one. The combined model is
    a family of one. Analyses that could not be estimated have no p and do not count."""
    rows = rows.copy()
    if "p_value" not in rows:
        rows["p_value"] = np.nan
    rows["p_holm"] = np.nan
    for _, family in rows.groupby("analysis", sort=False):
        rows.loc[family.index, "p_holm"] = holm(family["p_value"])
    return rows


def combined_model(scores: pd.DataFrame, domains: list[str], covariates: list[str]) -> dict:
    """Secondary analysis: one model of all domains with a common DiD, domain-specific means
    and a participant-by-domain random intercept nested in participant and institution."""
    frames = [model_frame(scores, domain, covariates) for domain in domains]
    frame = pd.concat(frames, ignore_index=True)
    fit, *_ = fit_model(frame, primary_formula(covariates) + " + C(domain)", extra_levels=["domain"])
    return {"analysis": "combined", "domain": "all", "term": DID_TERM, **contrast(fit, DID_TERM),
            "n_participants": int(frame["participant_key"].nunique()),
            "n_institutions": int(frame["institution"].nunique()), **fit_status(fit),
            "note": "all domains, common DiD, (1 | institution/participant/domain)"}

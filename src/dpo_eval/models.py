"""Mixed-effects models of competency gains (participants nested in institutions)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import patsy
from statsmodels.regression.mixed_linear_model import MixedLM
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.sm_exceptions import ConvergenceWarning

DID_TERM = "post:program"


class ModelDataError(ValueError):
    """The data cannot support the model; the message says why and what to check."""


def model_frame(scores: pd.DataFrame, domain: str, covariates: list[str]) -> pd.DataFrame:
    """Pre and post scores of one domain with the design columns of the primary model.

    Missing baseline covariates are handled by the missing-indicator method (White & Thompson,
    2005, Stat. Med. 24:993), so that a participant without them still contributes.
    """
    frame = scores[(scores["domain"] == domain) & scores["wave"].isin(["pre", "post"])].copy()
    if frame.empty:
        raise ModelDataError(f"domain '{domain}': no scale scores at the pre or post wave "
                             "(no one answered enough of its items)")
    for cohort in ("program", "comparison"):
        waves = set(frame.loc[frame["cohort"] == cohort, "wave"])
        if waves != {"pre", "post"}:
            raise ModelDataError(f"domain '{domain}': the {cohort} cohort has no scores at "
                                 f"wave(s) {sorted({'pre', 'post'} - waves)}; the gain cannot "
                                 "be compared between cohorts")
    frame["post"] = (frame["wave"] == "post").astype(float)
    frame["program"] = (frame["cohort"] == "program").astype(float)
    if "role" in covariates:
        frame["role"] = frame["role"].fillna("unknown")
    if "years_in_management" in covariates:
        years = frame["years_in_management"].astype(float)
        frame["years_missing"] = years.isna().astype(float)
        frame["years_c"] = (years - years.mean()).fillna(0.0)
    return frame.reset_index(drop=True)


def primary_formula(covariates: list[str]) -> str:
    terms = ["post * program"]
    if "role" in covariates:
        terms.append("C(role, Treatment('deputy'))")
    if "years_in_management" in covariates:
        terms += ["years_c", "years_missing"]
    return "score ~ " + " + ".join(terms)


def full_rank_design(frame: pd.DataFrame, formula: str) -> tuple[pd.DataFrame, list[str]]:
    """Fixed-effects design matrix of ``formula`` with aliased columns dropped, as lme4 does
    ("fixed-effect model matrix is rank deficient so dropping k columns"); returns the matrix
    and the names of the dropped columns."""
    design = patsy.dmatrix(formula.split("~", 1)[1], frame, return_type="dataframe")
    kept, dropped, rank = [], [], 0
    for column in design.columns:
        candidate = design[kept + [column]].to_numpy()
        new_rank = np.linalg.matrix_rank(candidate)
        if new_rank > rank:
            kept.append(column)
            rank = new_rank
        else:
            dropped.append(column)
    return design[kept], dropped


def fit_primary(frame: pd.DataFrame, covariates: list[str]) -> dict:
    """REML fit of ``score ~ post * program (+ covariates)`` with random intercepts for the
    institution and for the participant within the institution.

    The interaction ``post:program`` is the difference-in-differences: the program cohort's
    pre-to-post gain minus the comparison cohort's. Intervals here are Wald (normal) intervals.
    """
    formula = primary_formula(covariates)
    design, dropped = full_rank_design(frame, formula)
    model = MixedLM(frame["score"].to_numpy(), design, groups=frame["institution"].to_numpy(),
                    exog_re=np.ones((len(frame), 1)),
                    exog_vc={"participant": _nested_indicators(frame)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Using deprecated variance components format")
        result = model.fit(reml=True, method=["lbfgs"])
    convergence_warnings = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    z = stats.norm.ppf(0.975)
    fe = pd.DataFrame({"term": result.fe_params.index, "estimate": result.fe_params.values,
                       "std_error": result.bse_fe.values})
    fe["statistic"] = fe["estimate"] / fe["std_error"]
    fe["p_value"] = 2 * stats.norm.sf(np.abs(fe["statistic"]))
    fe["conf_low"] = fe["estimate"] - z * fe["std_error"]
    fe["conf_high"] = fe["estimate"] + z * fe["std_error"]
    variance = {"institution": float(result.cov_re.iloc[0, 0]),
                "participant": float(result.vcomp[0]), "residual": float(result.scale)}
    return {
        "formula": formula,
        "dropped_aliased_terms": dropped,
        "random": "(1 | institution) + (1 | institution:participant)",
        "converged": bool(result.converged) and not convergence_warnings,
        "warnings": convergence_warnings,
        "reml_loglik": float(result.llf),
        "n_obs": int(len(frame)),
        "n_participants": int(frame["participant_key"].nunique()),
        "n_institutions": int(frame["institution"].nunique()),
        "fixed_effects": fe.to_dict(orient="records"),
        "variance_components": variance,
    }


def _nested_indicators(frame: pd.DataFrame) -> dict:
    """Participant-within-institution indicator matrices, one per institution (statsmodels'
    variance-component layout for a nested random intercept)."""
    blocks = {}
    for institution, rows in frame.groupby("institution", sort=True).groups.items():
        codes, _ = pd.factorize(frame.loc[rows, "participant_key"], sort=True)
        blocks[institution] = np.eye(codes.max() + 1)[codes]
    return blocks


def did_table(fits: dict[str, dict], p_adjust: str = "holm") -> pd.DataFrame:
    """One row per domain with the difference-in-differences and Holm-adjusted p-values."""
    rows = []
    for domain, fit in fits.items():
        term = next(t for t in fit["fixed_effects"] if t["term"] == DID_TERM)
        rows.append({"domain": domain, **{k: term[k] for k in ("estimate", "std_error", "statistic",
                                                                 "p_value", "conf_low", "conf_high")},
                     "n_participants": fit["n_participants"], "n_institutions": fit["n_institutions"]})
    table = pd.DataFrame(rows)
    # statsmodels' default is Holm-Sidak; the analysis plan names Holm, so it is passed explicitly.
    table["p_holm"] = multipletests(table["p_value"], method=p_adjust)[1]
    return table[["domain", "estimate", "std_error", "statistic", "p_value", "p_holm", "conf_low",
                  "conf_high", "n_participants", "n_institutions"]]

"""Mixed-effects models of competency gains: participants nested in institutions.

The primary model of a domain (the analysis plan, STUDY.md)::

    score ~ post * program [+ role + years in management]
            + (1 | institution) + (1 | institution:participant)

fitted by REML on every available pre and post score (a participant with one wave still
contributes). ``post:program`` is the difference-in-differences (DiD): the program cohort's
pre-to-post gain minus the comparison cohort's. Inference uses Satterthwaite degrees of freedom
(see ``dpo_eval.analysis.lmm``); p-values of the domains are adjusted by Holm (1979).

Command line (compare with lme4 on any model frame; wall time on stderr)::

    python -m dpo_eval.analysis.models fit FRAME.csv OUT.csv
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from dpo_eval.analysis.lmm import LmmFit, NestedLmm, RandomTerm, t_inference
from dpo_eval.core.errors import UserError
from dpo_eval.analysis.multiplicity import adjust
from dpo_eval.core.study import COHORTS, MODEL_WAVES

DID_TERM = "post:program"
SINGULAR_RELATIVE_SD = 1e-4


class ModelDataError(UserError, ValueError):
    """The data cannot support the model; the message says why and what to check."""


# --------------------------------------------------------------------------- data


def model_frame(scores: pd.DataFrame, domain: str, covariates: list[str],
                waves: tuple[str, str] = MODEL_WAVES) -> pd.DataFrame:
    """Scores of one domain at two waves with the design columns of the model.

    ``post`` is 1 at the second wave of ``waves``. Missing baseline covariates are handled by
    the missing-indicator method (White & Thompson, 2005, Stat. Med. 24:993), so that a
    participant without them still contributes.
    """
    first, second = waves
    frame = scores[(scores["domain"] == domain) & scores["wave"].isin(waves)].copy()
    if frame.empty:
        raise ModelDataError(f"domain '{domain}': no scale scores at the {first} or {second} "
                             "wave (no one answered enough of its items); remove it from "
                             "analysis.domains or check the codebook's item texts")
    for cohort in COHORTS:
        present = set(frame.loc[frame["cohort"] == cohort, "wave"])
        if present != set(waves):
            raise ModelDataError(f"domain '{domain}': the {cohort} cohort has no scores at the "
                                 f"{' and '.join(sorted(set(waves) - present))} wave; the gains "
                                 "of the two cohorts cannot be compared")
    frame["post"] = (frame["wave"] == second).astype(float)
    frame["program"] = (frame["cohort"] == "program").astype(float)
    if "role" in covariates:
        frame["role"] = frame["role"].fillna("unknown")
    if "years_in_management" in covariates:
        years = frame["years_in_management"].astype(float)
        frame["years_missing"] = years.isna().astype(float)
        frame["years_c"] = (years - years.mean()).fillna(0.0)
    return frame.sort_values(["institution", "participant_key", "post"]).reset_index(drop=True)


def primary_formula(covariates: list[str], extra: str = "") -> str:
    terms = ["post * program" + extra]
    if "role" in covariates:
        terms.append("C(role, Treatment('deputy'))")
    if "years_in_management" in covariates:
        terms += ["years_c", "years_missing"]
    return "score ~ " + " + ".join(terms)


def full_rank_design(frame: pd.DataFrame, formula: str) -> tuple[pd.DataFrame, list[str]]:
    """Fixed-effects design of ``formula`` with aliased columns dropped, as lme4 does
    ("fixed-effect model matrix is rank deficient so dropping k columns")."""
    import patsy  # imported where used: the command line's start-up needs only the engine

    design = patsy.dmatrix(formula.split("~", 1)[1], frame, return_type="dataframe")
    kept, dropped, rank = [], [], 0
    for column in design.columns:
        new_rank = np.linalg.matrix_rank(design[kept + [column]].to_numpy())
        if new_rank > rank:
            kept.append(column)
            rank = new_rank
        else:
            dropped.append(column)
    return design[kept], dropped


def nested_terms(frame: pd.DataFrame, extra_levels: list[str] = ()) -> list[RandomTerm]:
    """(1 | institution) + (1 | institution:participant) [+ deeper nested intercepts]."""
    ones = np.ones((len(frame), 1))
    institution = frame["institution"].astype(str).to_numpy()
    participant = institution + ":" + frame["participant_key"].astype(str).to_numpy()
    terms = [RandomTerm("institution", institution, ones),
             RandomTerm("institution:participant", participant, ones)]
    level = participant
    for column in extra_levels:
        level = level + ":" + frame[column].astype(str).to_numpy()
        terms.append(RandomTerm(f"institution:participant:{column}", level, ones))
    return terms


# --------------------------------------------------------------------------- fitting


def statsmodels_theta(y: np.ndarray, design: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray | None:
    """statsmodels MixedLM REML fit of the two-level model, as relative SDs (theta). Not used to
    fit: an independent implementation the tests compare the engine's optimum with."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    groups = frame["institution"].astype(str).to_numpy()
    vc = {}
    for institution, rows in frame.groupby("institution", sort=True).groups.items():
        codes, _ = pd.factorize(frame.loc[rows, "participant_key"], sort=True)
        vc[str(institution)] = np.eye(codes.max() + 1)[codes]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MixedLM(y, design.to_numpy(), groups=groups, exog_re=np.ones((len(y), 1)),
                            exog_vc={"participant": vc})
            result = model.fit(reml=True, method=["lbfgs"])
    except (np.linalg.LinAlgError, ValueError):
        return None
    scale = float(result.scale)
    return np.sqrt(np.maximum([float(np.asarray(result.cov_re)[0, 0]) / scale,
                               float(result.vcomp[0]) / scale], 0.0))


def fit_model(frame: pd.DataFrame, formula: str,
              extra_levels: list[str] = ()) -> tuple[LmmFit, pd.DataFrame, list[str]]:
    """The nested model of ``formula`` with random intercepts of institution and participant
    (and of ``extra_levels``): the fit, its full-rank design and the aliased terms dropped."""
    design, dropped = full_rank_design(frame, formula)
    y = frame["score"].to_numpy(dtype=float)
    terms = nested_terms(frame, list(extra_levels))
    model = NestedLmm(y, design.to_numpy(), terms, list(design.columns))
    fit = model.fit()
    return fit, design, dropped


def fixed_effects_table(fit: LmmFit) -> pd.DataFrame:
    df, se = fit.model.satterthwaite(fit, np.eye(len(fit.beta)))
    statistic, p_value, low, high = t_inference(fit.beta, se, df)
    return pd.DataFrame({"term": fit.fixed_names, "estimate": fit.beta, "std_error": se, "df": df,
                         "statistic": statistic, "p_value": p_value, "conf_low": low,
                         "conf_high": high})


def variance_table(fit: LmmFit) -> pd.DataFrame:
    rows = [{"component": name, "variance": float(cov[0, 0]), "sd": float(np.sqrt(cov[0, 0]))}
            for name, cov in fit.covariances.items()]
    rows.append({"component": "residual", "variance": fit.sigma**2, "sd": fit.sigma})
    return pd.DataFrame(rows)


def model_checks(fit: LmmFit, design: pd.DataFrame, y: np.ndarray) -> dict:
    """Convergence, singularity judged on the outcome's scale, identifiability, ICCs and
    Nakagawa R^2.

    Convergence is lme4's check.conv.grad on the scaled gradient (see ``dpo_eval.analysis.lmm``).
    ``variance_components_identifiable`` is False, with the reason in
    ``identifiability_warning``, when the design cannot separate the variance components (e.g.
    every institution has a single participant: only their sum is estimable).

    A variance component is treated as zero (a singular fit) when its SD is below 1e-4 of the
    outcome's SD. ICCs: institution = t_i / total; participant (same person, same institution)
    = (t_i + t_p) / total. R^2 (Nakagawa & Schielzeth, 2013, Methods Ecol. Evol. 4:133):
    marginal = var(X b) / (var(X b) + t_i + t_p + s^2); conditional adds t_i + t_p above.
    """
    variances = {name: float(cov[0, 0]) for name, cov in fit.covariances.items()}
    tau_i = variances["institution"]
    tau_p = variances["institution:participant"]
    sigma2 = fit.sigma**2
    total = sum(variances.values()) + sigma2
    var_fixed = float(np.var(design.to_numpy() @ fit.beta, ddof=1))
    outcome_sd = float(np.std(y, ddof=1))
    zero = [name for name, v in variances.items() if np.sqrt(v) < SINGULAR_RELATIVE_SD * outcome_sd]
    return {
        "converged": fit.converged,
        "optimizer_message": fit.optimizer_message,
        "scaled_gradient": fit.scaled_gradient,
        "variance_components_identifiable": fit.identifiable,
        "identifiability_warning": fit.identifiability_note,
        "singular": bool(zero),
        "zero_variance_components": ";".join(zero),
        "reml_criterion": fit.reml_criterion,
        "icc_institution": tau_i / total,
        "icc_participant": (tau_i + tau_p) / total,
        "r2_marginal": var_fixed / (var_fixed + total),
        "r2_conditional": (var_fixed + total - sigma2) / (var_fixed + total),
    }


def qq_data(fit: LmmFit) -> pd.DataFrame:
    """Sorted standardised residuals and random effects against normal quantiles (Blom)."""
    from scipy import stats

    model = fit.model
    parts = {"residual": model.residuals(fit)}
    for name, modes in model.random_effects(fit).items():
        parts[name] = modes.ravel()
    rows = []
    for kind, values in parts.items():
        values = np.sort(np.asarray(values, dtype=float))
        n = len(values)
        if n < 2 or values.std() == 0:
            continue
        theoretical = stats.norm.ppf((np.arange(1, n + 1) - 0.375) / (n + 0.25))
        standardised = (values - values.mean()) / values.std(ddof=1)
        rows.append(pd.DataFrame({"kind": kind, "theoretical": theoretical, "sample": standardised}))
    return pd.concat(rows, ignore_index=True)


def r_frame(frame: pd.DataFrame, design: pd.DataFrame) -> pd.DataFrame:
    """The fitted data in the layout of tests/reference/lmer_crosscheck.R (x_1..x_p design)."""
    out = pd.DataFrame({"y": frame["score"], "institution": frame["institution"],
                        "participant": frame["participant_key"]})
    for index, column in enumerate(design.columns, start=1):
        out[f"x_{index}"] = design[column].to_numpy()
    return out


def fit_primary(frame: pd.DataFrame, covariates: list[str]) -> dict:
    """The primary model of one domain, with its tables, checks and QQ data."""
    formula = primary_formula(covariates)
    fit, design, dropped = fit_model(frame, formula)
    fixed = fixed_effects_table(fit)
    checks = model_checks(fit, design, frame["score"].to_numpy())
    did = fixed[fixed["term"] == DID_TERM].iloc[0]
    total_sd = float(np.sqrt(variance_table(fit)["variance"].sum()))
    return {
        "formula": formula + " + (1 | institution) + (1 | institution:participant)",
        "design_columns": list(design.columns),
        "dropped_aliased_terms": dropped,
        "n_obs": int(len(frame)),
        "n_participants": int(frame["participant_key"].nunique()),
        "n_institutions": int(frame["institution"].nunique()),
        "fixed_effects": fixed.to_dict(orient="records"),
        "variance_components": variance_table(fit).to_dict(orient="records"),
        "checks": {**checks, "dropped_aliased_terms": ";".join(dropped)},
        "standardised_did": {"estimate": float(did["estimate"]) / total_sd,
                             "conf_low": float(did["conf_low"]) / total_sd,
                             "conf_high": float(did["conf_high"]) / total_sd},
        "qq": qq_data(fit).to_dict(orient="list"),
        "r_frame": r_frame(frame, design),
    }


def contrast(fit: LmmFit, term: str) -> dict:
    """Estimate, SE, Satterthwaite df, t, p and 95% CI of one fixed-effect term."""
    index = fit.fixed_names.index(term)
    L = np.zeros(len(fit.beta))
    L[index] = 1.0
    df, se = fit.model.satterthwaite(fit, L[None, :])
    statistic, p_value, low, high = t_inference(fit.beta[index:index + 1], se, df)
    return {"estimate": float(fit.beta[index]), "std_error": float(se[0]), "df": float(df[0]),
            "statistic": float(statistic[0]), "p_value": float(p_value[0]),
            "conf_low": float(low[0]), "conf_high": float(high[0])}


def did_table(fits: dict[str, dict], effect_sizes: dict[str, dict], p_adjust: str = "holm") -> pd.DataFrame:
    """One row per domain: the DiD with Satterthwaite inference, Holm-adjusted p and d_ppc2."""
    rows = []
    for domain, fit in fits.items():
        term = next(t for t in fit["fixed_effects"] if t["term"] == DID_TERM)
        d = effect_sizes[domain]
        rows.append({"domain": domain, **{k: term[k] for k in ("estimate", "std_error", "df", "statistic",
                                                                 "p_value", "conf_low", "conf_high")},
                     "d_ppc2": d["estimate"], "d_conf_low": d["conf_low"], "d_conf_high": d["conf_high"],
                     "n_participants": fit["n_participants"], "n_institutions": fit["n_institutions"]})
    table = pd.DataFrame(rows)
    table["p_holm"] = adjust(table["p_value"], p_adjust)
    return table[["domain", "estimate", "std_error", "df", "statistic", "p_value", "p_holm",
                  "conf_low", "conf_high", "d_ppc2", "d_conf_low", "d_conf_high",
                  "n_participants", "n_institutions"]]


# --------------------------------------------------------------------------- command line


def fit_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, LmmFit]:
    """Fit ``y ~ 0 + x_1 + ... + x_p + (1 | institution) + (1 | institution:participant)`` to a
    model frame in the layout of ``results/models/{domain}.frame.csv``; the result in the layout
    of tests/reference/lmer_crosscheck.R (quantity, term, value)."""
    design = [c for c in frame.columns if c.startswith("x_")]
    missing = [c for c in ("y", "institution", "participant") if c not in frame.columns]
    if missing or not design:
        raise ModelDataError(f"the model frame needs columns y, institution, participant and x_1..x_p; "
                             f"missing: {', '.join(missing) or 'x_ columns'}")
    bad = frame[["y", *design]].isna().any(axis=1) | frame[["institution", "participant"]].isna().any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise ModelDataError(f"row {row} of the model frame has an empty value; remove incomplete rows")
    institution = frame["institution"].astype(str).to_numpy()
    participant = institution + ":" + frame["participant"].astype(str).to_numpy()
    ones = np.ones((len(frame), 1))
    model = NestedLmm(frame["y"].to_numpy(dtype=float), frame[design].to_numpy(dtype=float),
                      [RandomTerm("institution", institution, ones),
                       RandomTerm("institution:participant", participant, ones)], design)
    fit = model.fit()
    df, se = model.satterthwaite(fit, np.eye(len(design)))
    rows = ([("estimate", t, v) for t, v in zip(design, fit.beta)]
            + [("std_error", t, v) for t, v in zip(design, se)]
            + [("df", t, v) for t, v in zip(design, df)]
            + [("variance", name, float(fit.covariances[name][0, 0]))
               for name in ("institution:participant", "institution")]
            + [("variance", "Residual", fit.sigma**2), ("reml_criterion", "", fit.reml_criterion),
               ("singular", "", float(fit.singular)), ("converged", "", float(fit.converged)),
               ("identifiable", "", float(fit.identifiable))]
            + [("theta", name, float(t)) for name, t in zip(("institution", "institution:participant"), fit.theta)])
    return pd.DataFrame(rows, columns=["quantity", "term", "value"]), fit


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    import time

    parser = argparse.ArgumentParser(prog="python -m dpo_eval.analysis.models",
                                     description="Fit the primary mixed model to a model frame.")
    commands = parser.add_subparsers(dest="command", required=True)
    fit_parser = commands.add_parser("fit", help="fit FRAME.csv (y, institution, participant, x_1..x_p) "
                                     "and write quantity,term,value to OUT.csv")
    fit_parser.add_argument("frame")
    fit_parser.add_argument("out")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        frame = pd.read_csv(args.frame)
        loaded = time.perf_counter()
        table, fit = fit_frame(frame)
    except (OSError, ValueError) as exc:
        print(f"error: {args.frame}: {exc}", file=sys.stderr)
        return 2
    fitted = time.perf_counter()
    table.to_csv(args.out, index=False, float_format="%.17g")
    if not fit.identifiable:
        print(f"warning: {fit.identifiability_note}", file=sys.stderr)
    if not fit.converged:
        print(f"warning: did not converge ({fit.optimizer_message})", file=sys.stderr)
    print(f"wall time {time.perf_counter() - started:.3f} s (fit and Satterthwaite df "
          f"{fitted - loaded:.3f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

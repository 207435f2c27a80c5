"""Longitudinal measurement invariance of the competency scales between entry (pre) and exit (post).

Per domain (and per cohort where the sample allows) one factor per wave is fitted to the keyed
item responses of the participants who answered every item at both waves (listwise deletion,
lavaan's default), with the residuals of the same item correlated across the waves, at three
levels of constraint (Meredith 1993; Widaman, Ferrer & Conger 2010):

* configural: the same pattern of loadings at both waves (first item's loading fixed at 1 in each
  wave, latent means 0, intercepts free);
* metric: the loadings equal across the waves;
* scalar: also the intercepts equal, the exit wave's latent mean free.

The configural model must fit acceptably on its own (CFI at least ``min_cfi``, RMSEA at most
``max_rmsea``; Hu & Bentler 1999's "acceptable" region); otherwise not even the same factor
structure is supported at both waves. Each further level is compared with the one below it by the
change of CFI and RMSEA, with Chen's (2007) cut-offs (a level is rejected when CFI drops by more than ``max_cfi_drop`` or RMSEA rises by more
than ``max_rmsea_rise``), and by the likelihood-ratio test, normal-theory and Satorra-Bentler
scaled (robust to the non-normality of 5-point items), which is reported but does not decide
(with a few hundred participants it rejects differences of no practical size). When the
scalar level is rejected and the metric level holds, partial scalar invariance (Byrne,
Shavelson & Muthen 1989) frees the exit intercept that lowers chi-square most, one at a time,
until the criteria hold again or ``max_freed_share`` of the items are free. The estimator is
dpo_eval.analysis.cfa (ML, checked against lavaan in tests/reference/invariance_lavaan.R).

A model is reported only from a fit that converged to a proper solution; fewer than ``min_n``
complete pairs, non-convergence and Heywood cases give a row that says so and no numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dpo_eval.analysis.cfa import CfaFit, CfaModel, fit_measures, fit_ml, likelihood_ratio_test, scaled_test
from dpo_eval.core.study import COHORTS, MODEL_WAVES

LEVELS = ("configural", "metric", "scalar")
PARTIAL = "partial_scalar"
ALL_PARTICIPANTS = "all"
MEASURES = ("chisq", "df", "p_value", "cfi", "tli", "rmsea", "rmsea_low", "rmsea_high", "srmr",
            "scaling_factor", "chisq_scaled", "p_value_scaled")
COLUMNS = ("domain", "group", "model", "status", "n", "k", *MEASURES, "compared_with", "delta_cfi",
           "delta_rmsea", "delta_srmr", "lr_chisq", "lr_df", "lr_p_value", "lr_chisq_scaled",
           "lr_p_value_scaled", "decision", "freed_items", "note")
LOADING_COLUMNS = ("domain", "group", "model", "item", "wave", "loading_std")


@dataclass(frozen=True)
class Criteria:
    """The decision rules (config ``analysis.invariance``)."""

    min_n: int = 100
    max_cfi_drop: float = 0.010
    max_rmsea_rise: float = 0.015
    max_freed_share: float = 0.5
    min_cfi: float = 0.90
    max_rmsea: float = 0.08

    def configural_fits(self, cfi: float, rmsea: float) -> bool:
        """Acceptable fit of the configural model: CFI >= min_cfi and RMSEA <= max_rmsea."""
        return bool(cfi >= self.min_cfi and rmsea <= self.max_rmsea)

    def rejects(self, delta_cfi: float, delta_rmsea: float) -> bool:
        """Chen (2007): non-invariance when CFI drops by more than 0.010 or RMSEA rises by more
        than 0.015 from the less constrained model."""
        return bool(delta_cfi < -self.max_cfi_drop or delta_rmsea > self.max_rmsea_rise)


# --------------------------------------------------------------------------- the models


def longitudinal_model(k: int, level: str, freed: tuple[int, ...] = ()) -> CfaModel:
    """The two-wave one-factor model of ``k`` items (observed variables: the items at pre, then
    at post) at ``level``; ``freed`` lists the items whose exit intercepts stay free at the
    scalar level (partial invariance)."""
    p = 2 * k
    counter = iter(range(10 * p * p))
    free = {"lambda": np.full((p, 2), -1), "psi": np.full((2, 2), -1), "theta": np.full((p, p), -1),
            "nu": np.full(p, -1), "alpha": np.full(2, -1)}
    fixed = {"lambda": np.zeros((p, 2)), "psi": np.zeros((2, 2)), "theta": np.zeros((p, p)),
             "nu": np.zeros(p), "alpha": np.zeros(2)}
    fixed["lambda"][0, 0] = fixed["lambda"][k, 1] = 1.0  # marker items
    for item in range(1, k):
        free["lambda"][item, 0] = next(counter)
        free["lambda"][k + item, 1] = (free["lambda"][item, 0] if level != "configural"
                                       else next(counter))
    free["psi"][0, 0], free["psi"][1, 1] = next(counter), next(counter)
    free["psi"][0, 1] = free["psi"][1, 0] = next(counter)
    for item in range(k):
        free["theta"][item, item], free["theta"][k + item, k + item] = next(counter), next(counter)
        free["theta"][item, k + item] = free["theta"][k + item, item] = next(counter)
        free["nu"][item] = next(counter)
        equal = level == "scalar" and item not in freed
        free["nu"][k + item] = free["nu"][item] if equal else next(counter)
    if level == "scalar":
        free["alpha"][1] = next(counter)
    return CfaModel(free, fixed)


def wide_frame(responses: pd.DataFrame, domain: str, items: list[str],
               cohort: str | None = None) -> pd.DataFrame:
    """Participants with every item of ``domain`` answered at pre and at post: columns
    ``{item}.pre`` ... then ``{item}.post`` ..., keyed values (reverse items recoded at ingest)."""
    rows = responses[(responses["domain"] == domain) & responses["wave"].isin(MODEL_WAVES)]
    if cohort is not None:
        rows = rows[rows["cohort"] == cohort]
    wide = rows.pivot_table(index="participant_key", columns=["wave", "item"], values="value",
                            aggfunc="first")
    columns = [(wave, item) for wave in MODEL_WAVES for item in items]
    wide = wide.reindex(columns=pd.MultiIndex.from_tuples(columns)).dropna()
    wide.columns = [f"{item}.{wave}" for wave, item in columns]
    return wide.sort_index()


def fit_status(fit: CfaFit) -> str:
    if not fit.converged:
        return "not_converged"
    return "ok" if fit.proper else "improper"


STATUS_NOTES = {"not_converged": "the fit did not converge ({message}); no numbers are reported",
                "improper": "improper solution (a negative variance or a factor correlation "
                            "beyond 1); no numbers are reported"}


# --------------------------------------------------------------------------- rows of the table


def _model_row(base: dict, model: str, fit: CfaFit | None, note: str = "") -> dict:
    row = {**base, "model": model}
    if fit is None:
        return {**row, "status": "too_few", "note": note}
    status = fit_status(fit)
    row["status"] = status
    if status != "ok":
        return {**row, "note": STATUS_NOTES[status].format(message=fit.message)}
    return {**row, **fit_measures(fit), **scaled_test(fit), "note": note}


def _compare(row: dict, general_row: dict, restricted: CfaFit, general: CfaFit,
             criteria: Criteria) -> dict:
    """The change from the less constrained model and the decision on ``row``'s level."""
    row = {**row, "compared_with": general_row["model"]}
    if row["status"] != "ok" or general_row["status"] != "ok":
        return {**row, "decision": "not_tested"}
    delta_cfi = row["cfi"] - general_row["cfi"]
    delta_rmsea = row["rmsea"] - general_row["rmsea"]
    row.update(delta_cfi=delta_cfi, delta_rmsea=delta_rmsea, delta_srmr=row["srmr"] - general_row["srmr"],
               **likelihood_ratio_test(restricted, general))
    row["decision"] = "rejected" if criteria.rejects(delta_cfi, delta_rmsea) else "holds"
    return row


def _partial_scalar(data: np.ndarray, k: int, items: list[str], base: dict, metric_row: dict,
                    metric: CfaFit, criteria: Criteria) -> tuple[dict, CfaFit | None]:
    """Free exit intercepts one at a time (the one lowering chi-square most) until the scalar
    criteria hold against the metric model or ``max_freed_share`` of the items are free."""
    freed: tuple[int, ...] = ()
    row, fit = None, None
    while len(freed) < int(np.floor(criteria.max_freed_share * k)):
        candidates = [(item, fit_ml(longitudinal_model(k, "scalar", (*freed, item)), data))
                      for item in range(k) if item not in freed]
        usable = [(item, candidate) for item, candidate in candidates if fit_status(candidate) == "ok"]
        if not usable:
            break
        item, fit = min(usable, key=lambda pair: pair[1].chisq)
        freed = (*freed, item)
        row = _compare(_model_row(base, PARTIAL, fit), metric_row, fit, metric, criteria)
        row["freed_items"] = ";".join(items[index] for index in sorted(freed))
        if row["decision"] == "holds":
            break
    if row is None:
        return {**_model_row(base, PARTIAL, None), "status": "not_converged", "decision": "not_tested",
                "note": "no model with a freed intercept converged to a proper solution"}, None
    return row, fit


def _loading_rows(base: dict, model: str, fit: CfaFit, items: list[str]) -> list[dict]:
    loadings = fit.standardised_loadings()
    k = len(items)
    return [{**{key: base[key] for key in ("domain", "group")}, "model": model, "item": item,
             "wave": wave, "loading_std": float(loadings[position * k + index, position])}
            for position, wave in enumerate(MODEL_WAVES) for index, item in enumerate(items)]


def invariance_rows(frame: pd.DataFrame, domain: str, group: str, items: list[str],
                    criteria: Criteria) -> tuple[list[dict], list[dict]]:
    """The rows of one domain and group: configural, metric and scalar (and partial scalar where
    the scalar level is rejected and the metric level holds), and the standardised loadings of
    every model reported."""
    k, n = len(items), len(frame)
    base = {"domain": domain, "group": group, "n": n, "k": k, "freed_items": ""}
    if n < criteria.min_n:
        note = f"{n} participants with every item at both waves, fewer than min_n = {criteria.min_n}"
        return [{**_model_row(base, level, None, note), "decision": "not_tested"} for level in LEVELS], []
    data = frame.to_numpy(dtype=float)
    fits = {level: fit_ml(longitudinal_model(k, level), data) for level in LEVELS}
    rows = {level: _model_row(base, level, fits[level]) for level in LEVELS}
    configural = rows["configural"]
    configural["decision"] = ("not_tested" if configural["status"] != "ok" else "holds"
                              if criteria.configural_fits(configural["cfi"], configural["rmsea"]) else "rejected")
    for lower, upper in zip(LEVELS, LEVELS[1:]):
        rows[upper] = _compare(rows[upper], rows[lower], fits[upper], fits[lower], criteria)
    if rows["scalar"]["decision"] == "rejected" and rows["metric"]["decision"] == "holds":
        rows[PARTIAL], fits[PARTIAL] = _partial_scalar(data, k, items, base, rows["metric"],
                                                       fits["metric"], criteria)
    loadings = [row for model, row in rows.items() if row["status"] == "ok"
                for row in _loading_rows(base, model, fits[model], items)]
    return list(rows.values()), loadings


def invariance_table(responses: pd.DataFrame, items_of: dict[str, list[str]], criteria: Criteria,
                     by_cohort: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``invariance.csv`` and ``invariance_loadings.csv``: every domain of ``items_of``, all
    participants and, with ``by_cohort``, each cohort on its own."""
    groups = [ALL_PARTICIPANTS, *(COHORTS if by_cohort else ())]
    rows, loadings = [], []
    for domain, items in items_of.items():
        for group in groups:
            frame = wide_frame(responses, domain, items, None if group == ALL_PARTICIPANTS else group)
            domain_rows, domain_loadings = invariance_rows(frame, domain, group, items, criteria)
            rows += domain_rows
            loadings += domain_loadings
    table = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    table[["n", "k"]] = table[["n", "k"]].astype(int)
    table["df"] = table["df"].astype("Int64")
    table["lr_df"] = table["lr_df"].astype("Int64")
    return table, pd.DataFrame(loadings, columns=list(LOADING_COLUMNS))


# --------------------------------------------------------------------------- what holds


@dataclass(frozen=True)
class LevelHeld:
    """The highest level of invariance supported for one domain and group: ``level`` is one of
    "scalar", "partial_scalar", "metric", "configural", "none" (the configural model fits
    poorly), "not_estimable" (too few participants, or the configural model failed);
    ``freed_items`` are the items with free exit intercepts."""

    domain: str
    group: str
    level: str
    n: int
    freed_items: tuple[str, ...] = ()
    reason: str = ""

    @property
    def means_comparable(self) -> bool:
        """Whether item and scale means may be compared across the waves: under scalar invariance
        without restriction, under partial scalar invariance for the latent mean only."""
        return self.level in ("scalar", PARTIAL)


def level_held(table: pd.DataFrame, domain: str, group: str = ALL_PARTICIPANTS) -> LevelHeld:
    """Read the decisions of ``invariance.csv`` for one domain and group."""
    rows = table[(table["domain"] == domain) & (table["group"] == group)].set_index("model")
    n = int(rows["n"].iloc[0])
    configural = rows.loc["configural"]
    if configural["status"] != "ok":
        return LevelHeld(domain, group, "not_estimable", n, reason=str(configural["note"]))
    if configural["decision"] != "holds":
        return LevelHeld(domain, group, "none", n, reason="configural fit below min_cfi / above max_rmsea")
    if rows.loc["metric", "decision"] != "holds":
        return LevelHeld(domain, group, "configural", n, reason=str(rows.loc["metric", "decision"]))
    if rows.loc["scalar", "decision"] == "holds":
        return LevelHeld(domain, group, "scalar", n)
    if PARTIAL in rows.index and rows.loc[PARTIAL, "decision"] == "holds":
        freed = tuple(str(rows.loc[PARTIAL, "freed_items"]).split(";"))
        return LevelHeld(domain, group, PARTIAL, n, freed)
    return LevelHeld(domain, group, "metric", n, reason=str(rows.loc["scalar", "decision"]))

"""Multiplicity: the one Holm adjustment, the one significance predicate and the one interval
rule of the package. Models (the domains' DiD), the secondary analyses, the needs tests, the
power simulation and the reports' findings all call these; nothing else adjusts a p-value or
decides significance.

- ``holm``: Holm's (1979) step-down adjusted p-values, the i-th smallest of m multiplied by
  m - i + 1, made monotone and capped at 1 (equal to R's ``p.adjust(p, "holm")`` and
  statsmodels' ``multipletests(p, method="holm")``); missing p-values stay missing and do not
  count in the family.
- ``significant``: p < alpha (alpha = 0.05 unless a caller's design says otherwise).
- ``holm_intervals``: confidence intervals on the footing of the Holm-adjusted p-values, which
  exclude zero exactly when ``significant(p_holm)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.05


def holm(p_values) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values of one family of tests.

    p_(k)^Holm = max_{j <= k} min{1, (m - j + 1) p_(j)} for the p-values in increasing order,
    m the number of non-missing p-values (R's ``p.adjust(p, "holm")``). Missing (NaN) p-values,
    of analyses that could not be estimated, stay NaN and are not counted in m.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if len(valid):
        values = p[valid]
        order = np.argsort(values, kind="stable")
        stepped = np.maximum.accumulate((len(values) - np.arange(len(values))) * values[order])
        result = np.empty_like(values)
        result[order] = np.minimum(stepped, 1.0)
        adjusted[valid] = result
    return adjusted


def bonferroni(p_values) -> np.ndarray:
    """Bonferroni-adjusted p-values: min(1, m p), m the number of non-missing p-values."""
    p = np.asarray(p_values, dtype=float)
    return np.minimum(p * int((~np.isnan(p)).sum()), 1.0)


P_ADJUST = {"holm": holm, "bonferroni": bonferroni}


def adjust(p_values, method: str = "holm") -> np.ndarray:
    """Adjusted p-values of one family by ``method`` ("holm" or "bonferroni")."""
    return P_ADJUST[method](p_values)


def significant(p_value, alpha: float = ALPHA):
    """The package's significance predicate: p < alpha. A missing p (NaN) is never
    significant. Works element-wise on arrays and Series."""
    if np.ndim(p_value) == 0:
        return bool(p_value is not None and not pd.isna(p_value) and p_value < alpha)
    return np.asarray(p_value, dtype=float) < alpha


def holm_factor(p_value, p_holm, m: int):
    """The effective multiplier c = p_Holm / p of Holm's procedure, between 1 and m (m where
    p = 0, the most conservative choice when the ratio is undefined)."""
    p_value, p_holm = np.asarray(p_value, dtype=float), np.asarray(p_holm, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(p_value > 0, p_holm / p_value, float(m))
    return np.clip(factor, 1, max(m, 1))


def holm_intervals(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Confidence intervals on the footing of the Holm-adjusted p-values.

    Holm's step-down procedure multiplies test k's p-value by an effective factor
    c_k = p_Holm,k / p_k (between 1 and the number of tests m: (m - j + 1) at the step j that
    decides it, Holm 1979). Inverting the same t-test at the level alpha / c_k,

        estimate ± t(1 − alpha / (2 c_k); df) · SE,

    gives an interval that excludes zero exactly when the Holm-adjusted p is below alpha, so a
    "not significant" verdict never stands next to an interval off zero. Each interval is at
    least as wide as the unadjusted one and at most as wide as the Bonferroni interval
    (level 1 − alpha / m). ``table`` has columns estimate, std_error, df, p_value and p_holm
    (one family; rows with a missing p are not counted and get missing intervals). Adds
    columns conf_low_holm, conf_high_holm and level_holm.
    """
    from scipy import stats

    out = table.copy()
    m = int(out["p_value"].notna().sum())
    factor = holm_factor(out["p_value"], out["p_holm"], m)
    out["level_holm"] = 1 - alpha / factor
    quantile = stats.t.ppf(1 - alpha / (2 * factor), out["df"].astype(float))
    out["conf_low_holm"] = out["estimate"] - quantile * out["std_error"]
    out["conf_high_holm"] = out["estimate"] + quantile * out["std_error"]
    missing = out["p_value"].isna()
    out.loc[missing, ["level_holm", "conf_low_holm", "conf_high_holm"]] = np.nan
    return out

"""Reliability of the competency scales: Cronbach's alpha with Feldt's interval, McDonald's omega
total from a one-factor model, item-total correlations and alpha if an item is deleted."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def cronbach_alpha(items: np.ndarray) -> float:
    """alpha = k/(k-1) (1 - sum var(item) / var(total)) (Cronbach, 1951), complete cases."""
    k = items.shape[1]
    item_var = items.var(axis=0, ddof=1).sum()
    total_var = items.sum(axis=1).var(ddof=1)
    return float(k / (k - 1) * (1 - item_var / total_var))


def feldt_interval(alpha: float, n: int, k: int, level: float = 0.95) -> tuple[float, float]:
    """Feldt (1965) interval: (1 - alpha) / (1 - alpha_hat) ~ F(n - 1, (n - 1)(k - 1))."""
    d1, d2 = n - 1, (n - 1) * (k - 1)
    upper_q = stats.f.ppf(0.5 + level / 2, d1, d2)
    lower_q = stats.f.ppf(0.5 - level / 2, d1, d2)
    return float(1 - (1 - alpha) * upper_q), float(1 - (1 - alpha) * lower_q)


def one_factor_loadings(correlation: np.ndarray, tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Minimum-residual (iterated principal-axis) loadings of one factor, psych::fa(fm="minres")
    for a single factor: communalities are re-estimated until they settle."""
    R = np.array(correlation, dtype=float)
    communality = 1 - 1 / np.diag(np.linalg.inv(R))  # squared multiple correlations
    for _ in range(max_iter):
        reduced = R.copy()
        np.fill_diagonal(reduced, communality)
        values, vectors = np.linalg.eigh(reduced)
        loadings = vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
        new = loadings**2
        if np.max(np.abs(new - communality)) < tol:
            break
        communality = new
    return loadings if loadings.sum() >= 0 else -loadings


def omega_total(items: np.ndarray) -> float:
    """McDonald's omega total from a one-factor model of the item correlations:
    (sum lambda)^2 / ((sum lambda)^2 + sum (1 - lambda^2))."""
    loadings = one_factor_loadings(np.corrcoef(items, rowvar=False))
    common = loadings.sum() ** 2
    return float(common / (common + (1 - loadings**2).sum()))


def item_statistics(items: pd.DataFrame) -> pd.DataFrame:
    """Corrected item-total correlation (item vs the sum of the other items, psych's r.drop)
    and alpha if the item is deleted."""
    values = items.to_numpy(dtype=float)
    total = values.sum(axis=1)
    rows = []
    for index, item in enumerate(items.columns):
        rest = total - values[:, index]
        rows.append({"item": item,
                     "item_total_r": float(np.corrcoef(values[:, index], rest)[0, 1]),
                     "alpha_if_deleted": cronbach_alpha(np.delete(values, index, axis=1))})
    return pd.DataFrame(rows)


def reliability_table(responses: pd.DataFrame, domains: list[str]) -> pd.DataFrame:
    """Per domain and wave (complete cases on the domain's items): n, k, alpha with Feldt 95%
    interval, omega total; then one row per item with its item-total r and alpha if deleted."""
    rows = []
    for (domain, wave), group in responses[responses["domain"].isin(domains)].groupby(
            ["domain", "wave"], sort=True):
        wide = group.pivot_table(index="participant_key", columns="item", values="value").dropna()
        n, k = wide.shape
        if n < 3 or k < 2:
            continue
        values = wide.to_numpy(dtype=float)
        alpha = cronbach_alpha(values)
        low, high = feldt_interval(alpha, n, k)
        base = {"domain": domain, "wave": wave, "n": n, "k": k}
        rows.append({**base, "term": "alpha", "estimate": alpha, "conf_low": low, "conf_high": high})
        rows.append({**base, "term": "omega_total", "estimate": omega_total(values)})
        for record in item_statistics(wide).to_dict(orient="records"):
            rows.append({**base, "term": f"item_total_r:{record['item']}", "estimate": record["item_total_r"]})
            rows.append({**base, "term": f"alpha_if_deleted:{record['item']}",
                         "estimate": record["alpha_if_deleted"]})
    return pd.DataFrame(rows, columns=["domain", "wave", "n", "k", "term", "estimate", "conf_low", "conf_high"])

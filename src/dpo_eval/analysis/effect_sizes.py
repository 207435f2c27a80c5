"""Standardised effect sizes for pre-post designs with and without a comparison group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class EffectSize:
    estimate: float
    conf_low: float
    conf_high: float
    n: int


def morris_dppc2_from_summary(mean_pre_t: float, mean_post_t: float, sd_pre_t: float, n_t: int,
                              mean_pre_c: float, mean_post_c: float, sd_pre_c: float, n_c: int,
                              rho: float, level: float = 0.95) -> EffectSize:
    """Morris (2008, Organ. Res. Methods 11:364) d_ppc2: the difference of the mean pre-post
    changes of treatment and control over the pooled pretest SD, with the small-sample bias
    correction ``c_p = 1 - 3 / (4 (n_T + n_C - 2) - 1)``::

        d = c_p [(M_post,T - M_pre,T) - (M_post,C - M_pre,C)] / SD_pre,pooled

    Its sampling variance is Morris's equation 25, with rho the pre-post correlation::

        var = 2 c_p^2 (1 - rho) (n_T + n_C)/(n_T n_C) (n_T + n_C - 2)/(n_T + n_C - 4)
              * (1 + d^2 / (2 (1 - rho) (n_T + n_C)/(n_T n_C))) - d^2
    """
    if min(n_t, n_c) < 3:
        raise ValueError("d_ppc2 needs at least 3 completers in each group")
    df = n_t + n_c - 2
    sd_pre = np.sqrt(((n_t - 1) * sd_pre_t**2 + (n_c - 1) * sd_pre_c**2) / df)
    c_p = 1 - 3 / (4 * df - 1)
    d = c_p * ((mean_post_t - mean_pre_t) - (mean_post_c - mean_pre_c)) / sd_pre
    ratio = (n_t + n_c) / (n_t * n_c)
    variance = (2 * c_p**2 * (1 - rho) * ratio * (df / (n_t + n_c - 4))
                * (1 + d**2 / (2 * (1 - rho) * ratio)) - d**2)
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(variance)
    return EffectSize(float(d), float(d - half), float(d + half), int(n_t + n_c))


def morris_dppc2(pre_t: np.ndarray, post_t: np.ndarray, pre_c: np.ndarray, post_c: np.ndarray,
                 level: float = 0.95) -> EffectSize:
    """d_ppc2 from paired scores of completers (same order in pre and post); rho is the pre-post
    correlation pooled across the groups."""
    rho = pooled_correlation([(pre_t, post_t), (pre_c, post_c)])
    return morris_dppc2_from_summary(
        np.mean(pre_t), np.mean(post_t), np.std(pre_t, ddof=1), len(pre_t),
        np.mean(pre_c), np.mean(post_c), np.std(pre_c, ddof=1), len(pre_c), rho, level)


def pooled_correlation(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Pre-post correlation pooled across groups: the weighted mean of Fisher z, back-transformed."""
    weights, zs = [], []
    for pre, post in pairs:
        r = np.corrcoef(pre, post)[0, 1]
        zs.append(np.arctanh(r))
        weights.append(len(pre) - 3)
    return float(np.tanh(np.average(zs, weights=weights)))


def cohens_dz(pre: np.ndarray, post: np.ndarray, level: float = 0.95) -> EffectSize:
    """d_z = mean(post - pre) / SD(post - pre) (Cohen, 1988; Lakens, 2013, Front. Psychol. 4:863),
    with a noncentral-t confidence interval."""
    diff = np.asarray(post, float) - np.asarray(pre, float)
    n = len(diff)
    d = diff.mean() / diff.std(ddof=1)
    low, high = _noncentral_t_interval(d * np.sqrt(n), n - 1, level)
    return EffectSize(float(d), float(low / np.sqrt(n)), float(high / np.sqrt(n)), n)


def cohens_dav(pre: np.ndarray, post: np.ndarray) -> float:
    """d_av = mean(post - pre) / ((SD_pre + SD_post) / 2) (Cumming, 2012; Lakens, 2013)."""
    pre, post = np.asarray(pre, float), np.asarray(post, float)
    return float((post - pre).mean() / ((pre.std(ddof=1) + post.std(ddof=1)) / 2))


def _noncentral_t_interval(t: float, df: int, level: float) -> tuple[float, float]:
    """Confidence limits for the noncentrality parameter of an observed t (Steiger & Fouladi)."""
    from scipy.optimize import brentq

    upper_tail = (1 - level) / 2

    def limit(target: float) -> float:
        f = lambda ncp: stats.nct.sf(t, df, ncp) - target
        span = 10 + abs(t) * 2
        return brentq(f, t - span, t + span)

    return limit(upper_tail), limit(1 - upper_tail)

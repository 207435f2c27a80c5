"""Careless-responding indices per respondent and wave (Curran, 2016, J. Exp. Soc. Psychol. 66).

All functions take a respondents x items matrix of raw answers in questionnaire order (NaN for
skipped items) and return one value per respondent, computed without per-row Python loops.
"""

from __future__ import annotations

import warnings

import numpy as np


def longstring(answers: np.ndarray) -> np.ndarray:
    """Longest run of identical consecutive answers, skipped items ignored (Johnson, 2005).
    One pass over the items for all respondents at once: the current run grows where an
    answer equals the respondent's previous answer and restarts at 1 where it differs."""
    n, k = answers.shape
    last = np.full(n, np.nan)
    run = np.zeros(n)
    best = np.zeros(n)
    for item in range(k):  # k items (a few dozen); every step is vectorised over respondents
        values = answers[:, item]
        present = ~np.isnan(values)
        run = np.where(present, np.where(values == last, run + 1, 1), run)
        last = np.where(present, values, last)
        best = np.maximum(best, run)
    return best


def longstring_share(answers: np.ndarray) -> np.ndarray:
    """Longstring divided by the number of answered items (1.0 = straight-lining)."""
    answered = (~np.isnan(answers)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(answered > 0, longstring(answers) / answered, np.nan)


def irv(answers: np.ndarray) -> np.ndarray:
    """Intra-individual response variability: the SD of a respondent's answers (Dunn et al.,
    2018); values near 0 mean the same answer everywhere."""
    answered = (~np.isnan(answers)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.nanstd(answers, axis=1, ddof=1) if answers.shape[1] > 1 else np.full(len(answers), np.nan)
    return np.where(answered > 1, sd, np.nan)


def even_odd_consistency(keyed: np.ndarray, scale_of_column: list[str]) -> np.ndarray:
    """Even-odd consistency (Johnson, 2005; Curran, 2016): for every scale the mean of its
    odd-numbered and of its even-numbered items is taken; the two half-score vectors are
    correlated across scales and the correlation is stepped up with Spearman-Brown,
    ``2r / (1 + r)``. Attentive respondents score near 1; random responding near 0 or below.

    ``keyed`` must be reverse-keyed already. NaN when fewer than three scales have both halves
    or when the half scores do not vary across scales.
    """
    scales = list(dict.fromkeys(scale_of_column))
    odd = np.full((keyed.shape[0], len(scales)), np.nan)
    even = np.full_like(odd, np.nan)
    for s, scale in enumerate(scales):
        columns = [i for i, name in enumerate(scale_of_column) if name == scale]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN halves give NaN, as meant
            odd[:, s] = np.nanmean(keyed[:, columns[0::2]], axis=1)
            even[:, s] = np.nanmean(keyed[:, columns[1::2]], axis=1) if len(columns) > 1 else np.nan
    valid = ~np.isnan(odd) & ~np.isnan(even)
    n = valid.sum(axis=1)
    o = np.where(valid, odd, 0.0)
    e = np.where(valid, even, 0.0)
    with np.errstate(all="ignore"):
        o_mean = o.sum(axis=1) / n
        e_mean = e.sum(axis=1) / n
        o_dev = np.where(valid, odd - o_mean[:, None], 0.0)
        e_dev = np.where(valid, even - e_mean[:, None], 0.0)
        o_ss, e_ss = (o_dev**2).sum(axis=1), (e_dev**2).sum(axis=1)
        r = np.clip((o_dev * e_dev).sum(axis=1) / np.sqrt(o_ss * e_ss), -1.0, 1.0)
        # Spearman-Brown exceeds [-1, 1] for negative r; capped so that the index stays a
        # correlation. Equal half scores on every scale (no spread) leave it undefined.
        stepped = np.clip(2 * r / (1 + r), -1.0, 1.0)
    defined = (n >= 3) & (o_ss > 1e-12) & (e_ss > 1e-12)
    return np.where(defined, stepped, np.nan)

"""Careless-responding indices per respondent and wave (Curran, 2016, J. Exp. Soc. Psychol. 66).

All functions take a respondents x items matrix of raw answers in questionnaire order (NaN for
skipped items) and return one value per respondent, computed without per-row Python loops.
"""

from __future__ import annotations

import numpy as np


def longstring(answers: np.ndarray) -> np.ndarray:
    """Longest run of identical consecutive answers, skipped items ignored (Johnson, 2005)."""
    n, k = answers.shape
    result = np.zeros(n)
    for row in range(n):  # runs need a scan; k is small and this is O(n*k)
        values = answers[row][~np.isnan(answers[row])]
        if values.size == 0:
            continue
        change = np.flatnonzero(np.diff(values) != 0)
        bounds = np.concatenate([[-1], change, [values.size - 1]])
        result[row] = np.diff(bounds).max()
    return result


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

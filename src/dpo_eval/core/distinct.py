"""Numbering the distinct items of a long list, the step the fast readers and matchers share."""

from __future__ import annotations

import numpy as np


def number_distinct(items: list) -> tuple[np.ndarray, list]:
    """Each item's number among the distinct items (in order of first occurrence) and the
    distinct items: one C-speed pass of dict hashing, faster than ``pandas.factorize`` on bytes
    and on short texts."""
    number = {item: index for index, item in enumerate(dict.fromkeys(items))}
    return np.fromiter(map(number.__getitem__, items), dtype=np.int64, count=len(items)), list(number)

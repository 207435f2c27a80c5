"""What the exports say about the instrument: response scales from the labels found, the matrix
question a column belongs to, retrospective "then" columns, and candidate domains and
reverse-keyed items from the correlations of the answers. Used by `dpo-eval draft-codebook`;
every result here is a guess the researcher confirms."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dpo_eval.core.text import fold

# Known response scales, each point low to high: (ru, en, variants). The same family name with
# its number of points names the scale in the codebook (agree5, agree7, importance5, ...).
# Feminine forms ("согласна") are added to the variants automatically (see _feminine).
KNOWN_SCALES: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "agree4": [("Полностью не согласен", "Strongly disagree", ("Совершенно не согласен",)),
               ("Скорее не согласен", "Disagree", ()),
               ("Скорее согласен", "Agree", ()),
               ("Полностью согласен", "Strongly agree", ())],
    "agree5": [("Полностью не согласен", "Strongly disagree", ("Совершенно не согласен",)),
               ("Скорее не согласен", "Disagree", ()),
               ("В чём-то согласен, в чём-то нет", "Neither agree nor disagree",
                ("Затрудняюсь ответить",)),
               ("Скорее согласен", "Agree", ()),
               ("Полностью согласен", "Strongly agree", ())],
    "agree7": [("Совершенно не согласен", "Strongly disagree", ("Полностью не согласен",)),
               ("Не согласен", "Disagree", ()),
               ("Скорее не согласен", "Somewhat disagree", ()),
               ("Ни согласен, ни не согласен", "Neither agree nor disagree",
                ("Затрудняюсь ответить", "В чём-то согласен, в чём-то нет")),
               ("Скорее согласен", "Somewhat agree", ()),
               ("Согласен", "Agree", ()),
               ("Совершенно согласен", "Strongly agree", ("Полностью согласен",))],
    "importance5": [("Совсем не важно", "Not at all important", ()),
                    ("Скорее не важно", "Slightly important", ()),
                    ("Отчасти важно", "Moderately important", ("Средне",)),
                    ("Скорее важно", "Important", ()),
                    ("Очень важно", "Very important", ("Крайне важно",))],
    "frequency5": [("Никогда", "Never", ()), ("Редко", "Rarely", ()), ("Иногда", "Sometimes", ()),
                   ("Часто", "Often", ()), ("Всегда", "Always", ("Постоянно",))],
    "satisfaction5": [("Совсем не удовлетворён", "Very dissatisfied", ()),
                      ("Скорее не удовлетворён", "Dissatisfied", ()),
                      ("Отчасти удовлетворён", "Neutral", ()),
                      ("Скорее удовлетворён", "Satisfied", ()),
                      ("Полностью удовлетворён", "Very satisfied", ())],
}
# Phrases that mark a retrospective ("then") rating in a header, most specific first.
RETROSPECTIVE_MARKERS = ("до начала обучения", "до начала курса", "до начала программы",
                         "до обучения", "до курса", "before the training", "before the course",
                         "before the program")
# A column is a rating item when its answers take at most this many distinct values.
MAX_SCALE_POINTS = 11

_GOOGLE = re.compile(r"^(?P<prefix>.+?)\s*\[(?P<statement>[^\[\]]+)\]\s*$")
_YANDEX = re.compile(r"^(?P<prefix>.+?)\s+/\s+(?P<statement>.+)$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def split_header(header: str) -> tuple[str | None, str]:
    """(matrix question, statement) of a header: Google Forms write "Question [statement]",
    Yandex Forms "Question / statement"; a plain header is a statement without a matrix."""
    text = " ".join(str(header).split())
    for pattern in (_GOOGLE, _YANDEX):
        match = pattern.match(text)
        if match:
            return match.group("prefix").strip(), match.group("statement").strip()
    return None, text


def retrospective_marker(header: str) -> str | None:
    folded = fold(header)
    return next((marker for marker in RETROSPECTIVE_MARKERS if marker in folded), None)


def _feminine(label: str) -> list[str]:
    forms = [label.replace("согласен", "согласна"), label.replace("удовлетворён", "удовлетворена")]
    return [form for form in forms if form != label]


def scale_definition(name: str) -> dict[int, dict]:
    """The codebook entry of a known scale: value -> ru, en and variants (feminine forms too)."""
    entry = {}
    for value, (ru, en, variants) in enumerate(KNOWN_SCALES[name], start=1):
        spellings = [*_feminine(ru)]
        for variant in variants:
            spellings += [variant, *_feminine(variant)]
        entry[value] = {"ru": ru, "en": en, "variants": list(dict.fromkeys(spellings))}
    return entry


def _lookup(name: str) -> dict[str, int]:
    lookup = {}
    for value, spec in scale_definition(name).items():
        for label in (spec["ru"], spec["en"], *spec["variants"]):
            lookup.setdefault(fold(label), value)
    return lookup


@dataclass(frozen=True)
class ScaleGuess:
    name: str
    definition: dict[int, dict]
    note: str          # how it was inferred (a comment in the draft)
    lookup: dict[str, int]


def infer_scale(values: pd.Series, missing_codes: frozenset[str], family_hint: str = "") -> ScaleGuess:
    """The response scale of a group of columns from the answers found in them (``values``:
    every cell, as text). Labels are matched with the known scales (the one with the fewest
    points that holds every label found); bare numbers need a scale whose points cover them,
    else a numeric scale 1..k is proposed from the numbers that occur."""
    folded = values.map(fold)
    folded = folded[~folded.isin(missing_codes)]
    numbers = folded[folded.str.match(_INTEGER)].astype(int)
    labels = sorted(set(folded[~folded.str.match(_INTEGER)]))
    if labels:
        for name in sorted(KNOWN_SCALES, key=lambda n: (len(KNOWN_SCALES[n]), n != family_hint)):
            lookup = _lookup(name)
            if all(label in lookup for label in labels):
                points = len(KNOWN_SCALES[name])
                note = (f"{len(labels)} distinct labels found, all on the known {points}-point "
                        f"scale '{name}', ordered by it")
                outside = sorted(set(numbers[(numbers < 1) | (numbers > points)]))
                if outside:
                    note += f"; numbers outside 1..{points} also found: {outside[:8]}"
                return ScaleGuess(name, scale_definition(name), note, lookup)
        definition = {value: {"ru": label, "en": "TODO", "variants": []}
                      for value, label in enumerate(_first_seen(values, missing_codes), start=1)}
        return ScaleGuess("scale_unknown", definition,
                          f"labels not on any known scale ({', '.join(labels[:6])}...): listed in "
                          "the order first seen; PUT THEM IN ORDER, low to high", {})
    counts = numbers.value_counts()
    # Numbers typed by hand (0, 55) are rare: the scale is what most answers use.
    common = counts[counts >= max(2, 0.005 * counts.sum())].index
    top = int(max(common)) if len(common) else int(max(numbers, default=5))
    definition = {value: {"ru": str(value), "en": str(value), "variants": []}
                  for value in range(1, top + 1)}
    return ScaleGuess(f"numeric{top}", definition,
                      f"only numbers found; 1..{top} proposed from the values most answers use: "
                      "add the labels of the form", {})


def _first_seen(values: pd.Series, missing_codes: frozenset[str]) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        key = fold(value)
        if key and key not in missing_codes:
            seen.setdefault(key, " ".join(str(value).split()))
    return list(seen.values())


def is_rating_column(values: pd.Series, missing_codes: frozenset[str]) -> bool:
    """Answers of a rating item: a few distinct labels or small whole numbers."""
    folded = values.map(fold)
    folded = folded[~folded.isin(missing_codes)]
    distinct = set(folded)
    if not distinct or len(distinct) > MAX_SCALE_POINTS + 4:
        return False
    known = set().union(*(_lookup(name) for name in KNOWN_SCALES))
    numeric = {d for d in distinct if _INTEGER.match(d)}
    return all(d in known for d in distinct - numeric) and (
        not numeric or max(abs(int(d)) for d in numeric) <= 100)


# --------------------------------------------------------------------------- domains


def pooled_correlation(frames: list[pd.DataFrame], items: list[str]) -> tuple[np.ndarray, int]:
    """Pearson correlations of the items within each wave (pairwise complete), averaged over
    the waves weighted by the pairs' counts; and the number of respondents. Within-wave
    correlations keep a change between waves from looking like a common factor."""
    p = len(items)
    total, weight, rows = np.zeros((p, p)), np.zeros((p, p)), 0
    for frame in frames:
        present = [item for item in items if item in frame]
        if len(present) < 2:
            continue
        data = frame[present].astype(float)
        index = [items.index(item) for item in present]
        observed = data.notna().astype(float).to_numpy()
        pairs = observed.T @ observed
        corr = data.corr(min_periods=10).to_numpy()
        usable = ~np.isnan(corr)
        block = np.ix_(index, index)
        total[block] += np.where(usable, corr * pairs, 0.0)
        weight[block] += np.where(usable, pairs, 0.0)
        rows += len(frame)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(weight > 0, total / weight, 0.0)
    np.fill_diagonal(corr, 1.0)
    return corr, rows


def parallel_analysis(corr: np.ndarray, n: int, replicates: int = 40, seed: int = 20251127) -> int:
    """Number of components to keep by Horn's parallel analysis: leading eigenvalues of the
    correlation matrix above the 95th percentile of those of uncorrelated normal data of the
    same size (Horn 1965; as psych::fa.parallel with fa="pc"). Seeded: the same data give the
    same answer."""
    p = corr.shape[0]
    if p < 3 or n < 10:
        return 1
    observed = np.sort(np.linalg.eigvalsh(corr))[::-1]
    rng = np.random.default_rng(seed)
    random = np.array([np.sort(np.linalg.eigvalsh(np.corrcoef(rng.standard_normal((n, p)),
                                                              rowvar=False)))[::-1]
                       for _ in range(replicates)])
    threshold = np.quantile(random, 0.95, axis=0)
    keep = 0
    while keep < p and observed[keep] > threshold[keep]:
        keep += 1
    return max(keep, 1)


def varimax(loadings: np.ndarray, iterations: int = 1000, tolerance: float = 1e-12) -> np.ndarray:
    """Kaiser's varimax rotation of a loading matrix (the algorithm of R's stats::varimax,
    without Kaiser normalisation)."""
    p, k = loadings.shape
    if k < 2:
        return loadings
    rotation, criterion = np.eye(k), 0.0
    for _ in range(iterations):
        rotated = loadings @ rotation
        u, s, vt = np.linalg.svd(loadings.T @ (rotated**3 - rotated @ np.diag((rotated**2).sum(0)) / p))
        rotation = u @ vt
        if s.sum() < criterion * (1 + tolerance):
            break
        criterion = s.sum()
    return loadings @ rotation


@dataclass(frozen=True)
class DomainGuess:
    groups: list[list[int]]          # item positions per candidate domain, in item order
    reverse: list[bool]              # per item: reverse-keyed?
    item_rest: list[float]           # per item: mean correlation with its domain's other items


def suggest_domains(corr: np.ndarray, n: int) -> DomainGuess:
    """Candidate domains within one matrix question: as many as parallel analysis keeps, each
    item in the varimax-rotated principal component it loads on most; an item whose loading has
    the sign opposite to most of its domain's items is taken to be reverse-keyed."""
    p = corr.shape[0]
    k = parallel_analysis(corr, n)
    values, vectors = np.linalg.eigh(corr)
    order = np.argsort(values)[::-1][:k]
    loadings = varimax(vectors[:, order] * np.sqrt(np.clip(values[order], 0, None)))
    assignment = np.argmax(np.abs(loadings), axis=1)
    groups = [sorted(np.flatnonzero(assignment == c).tolist()) for c in range(k)]
    groups = sorted((g for g in groups if g), key=lambda g: g[0])
    reverse, item_rest = [False] * p, [0.0] * p
    for group in groups:
        column = int(assignment[group[0]])
        signs = np.sign(loadings[group, column])
        majority = 1.0 if (signs >= 0).sum() >= (signs < 0).sum() else -1.0
        for position, sign in zip(group, signs):
            reverse[position] = bool(sign * majority < 0)
        keyed = np.array([-1.0 if reverse[i] else 1.0 for i in group])
        block = corr[np.ix_(group, group)] * np.outer(keyed, keyed)
        for row, position in enumerate(group):
            others = np.delete(block[row], row)
            item_rest[position] = float(others.mean() * keyed[row]) if others.size else 0.0
    return DomainGuess(groups, reverse, item_rest)

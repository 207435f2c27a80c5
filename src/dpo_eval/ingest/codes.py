"""Participant codes: normalisation, what Excel does to codes undone, and matching of codes
typed inconsistently across waves."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from dpo_eval.core.distinct import number_distinct
from dpo_eval.core.study import WAVE_ORDER

# Latin letters that look like Cyrillic ones, mapped to the Cyrillic letter: codes issued in
# Cyrillic are often typed on an English keyboard layout.
_LOOKALIKE_TO_CYRILLIC = str.maketrans("ABEKMHOPCTXY", "АВЕКМНОРСТХУ")
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—_.]+")


def normalise_code(code: object) -> str:
    """Canonical form of a typed participant code: upper case, no spaces or dashes, Latin
    look-alike letters replaced by their Cyrillic twins ("км-022 01" -> "КМ02201")."""
    text = "" if code is None else str(code)
    return _SEPARATORS.sub("", text.upper().replace("Ё", "Е")).translate(_LOOKALIKE_TO_CYRILLIC)


def edit_distance_at_most_one(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by at most one substitution, insertion or deletion."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    for i in range(len(long_)):
        if long_[:i] + long_[i + 1:] == short:
            return True
    return False


# Excel's text marker typed before a code ("'0100102"), also as typographic quotes.
_TEXT_MARKER = re.compile(r"^\s*['‘’`]+")
# A digit-only code that a spreadsheet turned into a number and wrote back with decimals.
_NUMBER_FORM = re.compile(r"^\s*(\d+)[.,]0+\s*$")
EXCEL_FIXES = {"apostrophe": "Excel's text marker (a leading apostrophe) removed",
               "decimals": "the decimals a spreadsheet wrote after the number removed",
               "zeros": "leading zeros lost by Excel put back"}


def undo_excel_text(text: object) -> tuple[str, str]:
    """A code cell without what a spreadsheet added to it, and which fixes were made
    (keys of EXCEL_FIXES joined by "+", "" when none): "'0100102" -> ("0100102", "apostrophe"),
    "100102.0" -> ("100102", "decimals")."""
    text = "" if text is None else str(text)
    fixes = []
    stripped = _TEXT_MARKER.sub("", text)
    if stripped != text:
        fixes.append("apostrophe")
    number = _NUMBER_FORM.match(stripped)
    if number:
        stripped = number.group(1)
        fixes.append("decimals")
    return stripped, "+".join(fixes)


def fits_format(codes: pd.Series, pattern: str | None) -> pd.Series:
    """Whether each (normalised) code matches the declared pattern in full (all do without one)."""
    if not pattern:
        return pd.Series(True, index=codes.index)
    return codes.str.fullmatch(pattern).fillna(False).astype(bool)


def _padded_to_format(code: str, pattern: str, width: int | None) -> str | None:
    """The digit-only ``code`` with the leading zeros that make it fit ``pattern`` (to ``width``
    when declared, else the fewest zeros that fit), or None when no number of zeros does."""
    widths = [width] if width else range(len(code) + 1, len(code) + 9)
    for total in widths:
        candidate = code.zfill(total)
        if re.fullmatch(pattern, candidate):
            return candidate
    return None


def restore_leading_zeros(frame: pd.DataFrame, code_format: dict | None) -> pd.Series:
    """Codes with the leading zeros a spreadsheet dropped put back (index of ``frame``; NaN
    where nothing is restored). ``frame`` has ``institution`` and normalised ``code``.

    With a declared ``code_format`` (``pattern`` and optional ``width``), a digit-only code
    that does not fit gets the zeros that make it fit. Without one, only the study's own
    evidence counts: a digit-only code without a leading zero is restored when the same
    institution has exactly one code that equals it once its leading zeros are removed (the
    participant's other waves, saved without Excel), or else, when every code of the study that
    has leading zeros has the same width, by padding it to that width."""
    digits = frame["code"].str.fullmatch(r"\d+").fillna(False).astype(bool)
    bare = digits & ~frame["code"].str.startswith("0")
    if code_format and code_format.get("pattern"):
        pattern, width = code_format["pattern"], code_format.get("width")
        candidates = frame.loc[bare & ~fits_format(frame["code"], pattern), "code"]
        restored = candidates.map(lambda code: _padded_to_format(code, pattern, width))
        return restored.reindex(frame.index)
    zeroed = frame.loc[digits & ~bare, ["institution", "code"]].drop_duplicates()
    zeroed = zeroed.assign(bare=zeroed["code"].str.lstrip("0"))
    unique = zeroed.drop_duplicates(["institution", "bare"], keep=False)
    lookup = unique.set_index(["institution", "bare"])["code"]
    keys = pd.MultiIndex.from_arrays([frame.loc[bare, "institution"], frame.loc[bare, "code"]])
    restored = pd.Series(lookup.reindex(keys).to_numpy(), index=frame.index[bare])
    # Codes issued with leading zeros all of one width: a shorter bare code is padded to it
    # (a participant seen in a wave saved by Excel only).
    widths = zeroed["code"].str.len().unique()
    if len(widths) == 1:
        short = restored.isna() & (frame.loc[bare, "code"].str.len() < widths[0])
        restored[short] = frame.loc[short[short].index, "code"].str.zfill(int(widths[0]))
    return restored.reindex(frame.index)


def _pairs_within_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (i, j) of positions with equal keys (i == j included): a sort and
    the pairs of each group of equal keys, so the cost grows with the pairs found."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(ordered)])
    group = np.repeat(np.arange(len(starts)), sizes)
    repeat = sizes[group]
    left = np.repeat(np.arange(len(ordered)), repeat)
    offset = np.arange(len(left)) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    right = np.repeat(starts[group], repeat) + offset
    return order[left], order[right]


def neighbour_pairs(codes: pd.DataFrame) -> pd.DataFrame:
    """Every ordered pair (institution, code, other) of distinct codes of one institution at
    most one edit apart. Deletion-neighbourhood join (a substitution at position i leaves the
    same string when position i is deleted from both; an insertion leaves the shorter code when
    one character is deleted from the longer), so the cost grows linearly with the codes, not
    with their square. Sorted by institution, code and other."""
    distinct = codes[["institution", "code"]].drop_duplicates().sort_values(
        ["institution", "code"]).reset_index(drop=True)
    institution_ids, _ = number_distinct(distinct["institution"].tolist())
    texts = distinct["code"].tolist()
    # The variants: each code whole (position -1), and with each one character deleted.
    owners, positions, variants = [np.arange(len(texts))], [np.full(len(texts), -1)], [texts]
    for position in range(max(map(len, texts), default=0)):
        longer = np.flatnonzero(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
                                > position)
        owners.append(longer)
        positions.append(np.full(len(longer), position))
        variants.append([texts[i][:position] + texts[i][position + 1:] for i in longer])
    owners, positions = np.concatenate(owners), np.concatenate(positions)
    variant_ids, variant_texts = number_distinct([v for part in variants for v in part])
    count = len(variant_texts)
    left, right = _pairs_within_groups(institution_ids[owners] * count + variant_ids)
    first, second = positions[left], positions[right]
    one_edit = ((first == second) & (first >= 0)) | ((first < 0) != (second < 0))
    code, other = owners[left][one_edit], owners[right][one_edit]
    keep = code != other
    found = np.unique(code[keep] * len(texts) + other[keep])
    code, other = found // max(len(texts), 1), found % max(len(texts), 1)
    return pd.DataFrame({"institution": distinct["institution"].to_numpy()[code],
                         "code": distinct["code"].to_numpy()[code],
                         "other": distinct["code"].to_numpy()[other]})


def _identities(codes: pd.DataFrame) -> pd.Series:
    """(institution, code) -> the names and e-mails given with it, as (kind, value) pairs; from
    an ``identity`` column of frozensets, or from ``full_name`` and ``email`` columns."""
    if "identity" in codes.columns:
        return codes.groupby(["institution", "code"])["identity"].agg(
            lambda sets: frozenset().union(*sets))
    pairs = pd.concat([codes[["institution", "code"]].assign(kind=kind, value=codes[kind])
                       for kind in ("full_name", "email") if kind in codes.columns],
                      ignore_index=True)
    pairs = pairs[pairs["value"].fillna("") != ""].drop_duplicates()
    found: dict[tuple[str, str], set] = {}
    for institution, code, kind, value in zip(pairs["institution"], pairs["code"], pairs["kind"],
                                              pairs["value"]):
        found.setdefault((institution, code), set()).add((kind, value))
    return pd.Series({key: frozenset(given) for key, given in found.items()}, dtype=object)


def _wave_masks(codes: pd.DataFrame) -> pd.Series:
    """(institution, code) -> the waves it occurs in, as a bit mask (bit = wave order)."""
    bits = codes.assign(bit=np.left_shift(1, codes["wave"].map(WAVE_ORDER).to_numpy(dtype=np.int64)))
    return bits.drop_duplicates(["institution", "code", "bit"]).groupby(
        ["institution", "code"])["bit"].sum()


def _first_wave(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def _first_waves(masks: pd.Series) -> np.ndarray:
    """``_first_wave`` of every mask at once: the position of the lowest bit set."""
    masks = masks.to_numpy(dtype=np.int64)
    return np.log2(masks & -masks).astype(np.int64)


def _match_row(institution: str, code: str, target: str, mask: int,
               mine: frozenset, theirs: frozenset) -> dict:
    order_to_wave = {order: wave for wave, order in WAVE_ORDER.items()}
    base = {"institution": institution, "wave": order_to_wave[_first_wave(mask)],
            "typed_code": code, "matched_code": target}
    shared_kinds = {k for k, _ in mine} & {k for k, _ in theirs}
    if mine & theirs:
        return {**base, "status": "matched", "evidence": "same name or e-mail"}
    if shared_kinds:
        return {**base, "status": "rejected", "evidence": "name or e-mail differ"}
    return {**base, "status": "matched",
            "evidence": "only code one edit away; no name or e-mail to confirm"}


def resolve_near_misses(codes: pd.DataFrame) -> pd.DataFrame:
    """Match a code typed with one wrong character to the code its owner typed in other waves.

    ``codes`` has one row per distinct (institution, wave, code) with the names and e-mails
    given with that code: an ``identity`` column (a frozenset of (kind, value) pairs, possibly
    empty) or folded ``full_name`` and ``email`` columns. A typed code *C* is matched to a
    code *T* only when all of these hold:

    * *T* is the only code of the same institution one edit away from *C* (codes issued to one
      team are themselves one edit apart, so a code with several neighbours is left alone);
    * *C* and *T* never occur in the same wave;
    * where both carry a name (or both an e-mail), it is the same (otherwise two teammates, one who left
      after entry and one who joined late, would be joined into one person);
    * no other typed code is matched to *T* (matching is one-to-one: two codes claiming one
      target are two people or one unknowable typo, so all claims are left unmatched).

    When *C* and *T* are each other's only neighbour, the code first seen later is the typo.
    Returns the match audit: institution, wave, typed_code, matched_code, status ("matched",
    "rejected" or "ambiguous") and evidence. Codes with no neighbour in disjoint waves are not
    listed.
    """
    columns = ["institution", "wave", "typed_code", "matched_code", "status", "evidence"]
    pairs = neighbour_pairs(codes)
    masks = _wave_masks(codes)
    pairs["mask"] = masks.reindex(pd.MultiIndex.from_frame(pairs[["institution", "code"]])).to_numpy()
    pairs["mask_other"] = masks.reindex(pd.MultiIndex.from_frame(
        pairs[["institution", "other"]])).to_numpy()
    pairs["neighbours"] = pairs.groupby(["institution", "code"])["other"].transform("size")
    pairs["disjoint"] = (pairs["mask"] & pairs["mask_other"]) == 0
    other_count = pairs.set_index(["institution", "code"])["neighbours"]
    pairs["neighbours_other"] = other_count[~other_count.index.duplicated()].reindex(
        pd.MultiIndex.from_frame(pairs[["institution", "other"]])).to_numpy()
    first, first_other = _first_waves(pairs["mask"]), _first_waves(pairs["mask_other"])
    # A mutual pair: the code first seen later (then the larger code) is the typo.
    earlier = (first < first_other) | ((first == first_other) & (pairs["code"] < pairs["other"]))
    single = pairs[(pairs["neighbours"] == 1) & pairs["disjoint"]
                   & ~((pairs["neighbours_other"] == 1) & earlier)]
    involved = pd.concat([single[["institution", "code"]],
                          single[["institution", "other"]].rename(columns={"other": "code"})])
    identity = _identities(codes.merge(involved.drop_duplicates(), on=["institution", "code"]))
    empty = frozenset()
    rows = [_match_row(r.institution, r.code, r.other, r.mask,
                       identity.get((r.institution, r.code), empty),
                       identity.get((r.institution, r.other), empty))
            for r in single.sort_values(["institution", "code"]).itertuples()]
    audit = pd.DataFrame(rows, columns=columns)
    claimed = audit[audit["status"] == "matched"].groupby(["institution", "matched_code"])["typed_code"]
    claims = claimed.transform("size").reindex(audit.index).fillna(0)
    audit.loc[claims > 1, ["status", "evidence"]] = [
        "ambiguous", "another typed code is one edit from the same code; left unmatched"]
    # Per institution its matches, then the codes left between several targets.
    listed = pd.concat([audit.assign(part=0), _between_targets(pairs, audit).assign(part=1)],
                       ignore_index=True)
    return listed.sort_values(["institution", "part", "typed_code"], kind="stable").reset_index(
        drop=True)[columns]


def _between_targets(pairs: pd.DataFrame, audit: pd.DataFrame) -> pd.DataFrame:
    """A code seen in one wave with several codes one edit away in other waves: it cannot be
    told which one its owner meant, so it is left unmatched and listed as ambiguous."""
    taken = set(zip(audit["institution"], audit["typed_code"])) | set(
        zip(audit["institution"], audit["matched_code"]))
    one_wave = (pairs["mask"] & (pairs["mask"] - 1)) == 0
    candidates = pairs[one_wave & pairs["disjoint"]]
    counts = candidates.groupby(["institution", "code"])["other"].transform("size")
    candidates = candidates[counts > 1]
    order_to_wave = {order: wave for wave, order in WAVE_ORDER.items()}
    rows = [{"institution": institution, "wave": order_to_wave[_first_wave(int(group["mask"].iloc[0]))],
             "typed_code": code, "matched_code": "|".join(sorted(group["other"])),
             "status": "ambiguous", "evidence": "several codes one edit away; left unmatched"}
            for (institution, code), group in candidates.groupby(["institution", "code"], sort=True)
            if (institution, code) not in taken]
    return pd.DataFrame(rows, columns=["institution", "wave", "typed_code", "matched_code",
                                       "status", "evidence"])

"""Participant codes: normalisation and matching of codes typed inconsistently across waves."""

from __future__ import annotations

import re

import pandas as pd

from dpo_eval.study import WAVE_ORDER

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


def resolve_near_misses(codes: pd.DataFrame) -> pd.DataFrame:
    """Match a code typed with one wrong character to the code its owner typed in other waves.

    ``codes`` has one row per distinct (institution, wave, code) with ``identity``: the folded
    names and e-mails given with that code (a frozenset of (kind, value) pairs, possibly empty). A typed code *C* is
    matched to a code *T* only when all of these hold:

    * *T* is the only code of the same institution one edit away from *C* (codes issued to one
      team are themselves one edit apart, so a code with several neighbours is left alone);
    * *C* and *T* never occur in the same wave;
    * where both carry a name (or both an e-mail), it is the same (otherwise two teammates, one who left
      after entry and one who joined late, would be joined into one person).

    When *C* and *T* are each other's only neighbour, the code first seen later is the typo.
    Returns the match audit: institution, wave, typed_code, matched_code, status ("matched",
    "rejected" or "ambiguous") and evidence. Codes with no neighbour in disjoint waves are not
    listed.
    """
    columns = ["institution", "wave", "typed_code", "matched_code", "status", "evidence"]
    rows = []
    for institution, group in codes.groupby("institution", sort=True):
        waves_of = group.groupby("code")["wave"].agg(frozenset).to_dict()
        identity_of = group.groupby("code")["identity"].agg(lambda s: frozenset().union(*s)).to_dict()
        first_seen = {code: (min(WAVE_ORDER[w] for w in waves), code)
                      for code, waves in waves_of.items()}
        neighbours = {code: [o for o in waves_of if o != code and edit_distance_at_most_one(code, o)]
                      for code in waves_of}
        involved: set[str] = set()
        for code in sorted(waves_of):
            if len(neighbours[code]) != 1:
                continue
            target = neighbours[code][0]
            if waves_of[target] & waves_of[code]:
                continue
            if neighbours[target] == [code] and first_seen[code] < first_seen[target]:
                continue  # a mutual pair: the later code is the typo, handled on its turn
            involved |= {code, target}
            base = {"institution": institution,
                    "wave": min(waves_of[code], key=WAVE_ORDER.get),
                    "typed_code": code, "matched_code": target}
            mine, theirs = identity_of[code], identity_of[target]
            shared_kinds = {k for k, _ in mine} & {k for k, _ in theirs}
            if mine & theirs:
                rows.append({**base, "status": "matched", "evidence": "same name or e-mail"})
            elif shared_kinds:
                rows.append({**base, "status": "rejected", "evidence": "name or e-mail differ"})
            else:
                rows.append({**base, "status": "matched",
                             "evidence": "only code one edit away; no name or e-mail to confirm"})
        for code in sorted(set(waves_of) - involved):
            disjoint = [o for o in neighbours[code] if not (waves_of[o] & waves_of[code])]
            if len(disjoint) > 1 and len(waves_of[code]) == 1:
                rows.append({"institution": institution, "wave": next(iter(waves_of[code])),
                             "typed_code": code, "matched_code": "|".join(sorted(disjoint)),
                             "status": "ambiguous",
                             "evidence": "several codes one edit away; left unmatched"})
    return pd.DataFrame(rows, columns=columns)

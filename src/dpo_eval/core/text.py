"""Folding of survey text so that spellings seen in real exports compare equal."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def fold(text: object) -> str:
    """Case-, space- and "ё"-insensitive form of a label or header.

    Non-breaking spaces, repeated spaces and the letter "ё" are common differences between the
    label a form shows and the one an export or a hand-edited spreadsheet holds.
    """
    if text is None:
        return ""
    folded = unicodedata.normalize("NFC", str(text)).casefold().replace("ё", "е")
    return _SPACES.sub(" ", folded).strip()

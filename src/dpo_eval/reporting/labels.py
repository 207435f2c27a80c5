"""Labels of codes in the reader's language: domains, need areas, roles, formats, stakeholder
groups (from the codebook), municipalities and institutions (from the registry)."""

from __future__ import annotations

import pandas as pd


def names(codebook, registry: pd.DataFrame, lang: str) -> dict:
    suffix = "_en" if lang == "en" else ""
    return {
        "domain": {d: spec[lang] for d, spec in codebook.domains.items()},
        "item": {item.id: getattr(item, lang) for item in codebook.items},
        "area": {a["id"]: a[lang] for a in codebook.need_areas},
        "role": {code: spec[lang] for code, spec in codebook.fields["role"]["labels"].items()},
        "format": {code: spec[lang] for code, spec in codebook.fields["formats"]["labels"].items()},
        "stakeholder": {code: spec[lang] for code, spec in codebook.fields["stakeholder"]["labels"].items()},
        "municipality": dict(zip(registry["municipality"], registry["municipality" + suffix])),
        "institution": dict(zip(registry["id"], registry["name" + suffix])),
        "importance": [codebook.scales["importance5"][v][lang] for v in range(1, 6)],
    }

"""The institutions registry as ingest reads it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dpo_eval.errors import InputError, raise_all
from dpo_eval.readers import read_export

REGISTRY_COLUMNS = ("id", "name", "municipality", "type", "settlement", "language", "email")
# English names for reports in English; where absent, the Russian names are used.
REGISTRY_OPTIONAL = ("name_en", "municipality_en")


def load_registry(path: str | Path) -> pd.DataFrame:
    """The institutions registry (any encoding and separator the survey readers accept)."""
    table = read_export(path)
    missing = [c for c in REGISTRY_COLUMNS if c not in table.frame.columns]
    if missing:
        raise InputError(path, 1, None, f"required column(s) {', '.join(missing)} missing "
                         f"(present: {', '.join(table.frame.columns)})",
                         "add the column to the institutions registry")
    registry = table.frame[list(REGISTRY_COLUMNS)].copy()
    for column in REGISTRY_OPTIONAL:
        source = column.removesuffix("_en")
        registry[column] = (table.frame[column].where(table.frame[column].str.strip() != "", table.frame[source])
                            if column in table.frame.columns else table.frame[source])
    duplicated = registry["id"].duplicated(keep=False)
    problems = [InputError(path, int(row), "id", f"institution id '{registry.loc[row, 'id']}' "
                           f"occurs in rows {', '.join(map(str, registry.index[registry['id'] == registry.loc[row, 'id']]))}",
                           "give every institution its own id")
                for row in registry.index[duplicated & registry["id"].duplicated()]]
    raise_all(problems)
    return registry.reset_index(drop=True)

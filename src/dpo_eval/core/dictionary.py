"""The data dictionary: the meaning of every column of every table the pipeline writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

DICTIONARY = Path(__file__).with_name("data_dictionary.yaml")


class DictionaryError(ValueError):
    pass


def build_dictionary(tables: list[str | Path], results_dir: str | Path = "results") -> pd.DataFrame:
    """One row per file and column with its description; every column of every table must be
    described, and every described file must be among ``tables``."""
    spec = yaml.safe_load(DICTIONARY.read_text(encoding="utf-8"))
    shared, files = spec["columns"], spec["files"]
    rows, problems = [], []
    names = {Path(t).relative_to(results_dir).as_posix(): t for t in tables}
    for missing in sorted(set(files) - set(names)):
        problems.append(f"{missing}: described in the dictionary but not produced")
    for name, path in sorted(names.items()):
        if name not in files:
            problems.append(f"{name}: not described in {DICTIONARY.name}")
            continue
        columns = pd.read_csv(path, nrows=0).columns
        specific = files[name].get("columns") or {}
        for column in columns:
            description = specific.get(column) or shared.get(column)
            if description is None:
                problems.append(f"{name}: column '{column}' is not described")
            rows.append({"file": f"results/{name}", "column": column, "description": description,
                         "table": files[name]["description"]})
        for stale in sorted(set(specific) - set(columns)):
            problems.append(f"{name}: described column '{stale}' does not exist")
    if problems:
        raise DictionaryError("data dictionary and outputs disagree (edit "
                              f"src/dpo_eval/{DICTIONARY.name}):\n  - " + "\n  - ".join(problems))
    return pd.DataFrame(rows, columns=["file", "table", "column", "description"])

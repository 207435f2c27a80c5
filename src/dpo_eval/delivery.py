"""Delivery of the reports: who receives which file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dpo_eval.io import write_outputs
from dpo_eval.report import sha256_file

PARTNER_TYPES = ("university", "iro")


def build_manifest(registry_path: str | Path, evaluation_reports: list[str], output: str | Path) -> None:
    """One row per recipient and attachment: the university and the IRO receive the evaluation
    report in their registry language (institution reports join in a later stage)."""
    registry = pd.read_csv(registry_path, dtype=str, keep_default_na=False)
    reports = {Path(p).name.split(".")[1]: p for p in evaluation_reports}
    rows = []
    for entry in registry[registry["type"].isin(PARTNER_TYPES)].itertuples():
        report = reports.get(entry.language) or reports[sorted(reports)[0]]
        rows.append({"institution": entry.id, "email": entry.email, "language": entry.language,
                     "attachment": report, "attachment_sha256": sha256_file(report)})
    write_outputs({output: pd.DataFrame(rows, columns=["institution", "email", "language",
                                                       "attachment", "attachment_sha256"])})

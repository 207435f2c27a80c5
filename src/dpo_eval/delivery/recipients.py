"""Recipients: which report each recipient gets and under which name, and a first recipients
file made from the registry. The recipients file itself is read and checked by
``dpo_eval.core.registry`` (the one reader of the registry and the recipients)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dpo_eval.core.io import write_outputs
from dpo_eval.core.registry import Recipient, load_registry


def recipients_from_registry(registry_path: str | Path, output: str | Path) -> None:
    """A recipients file from the institutions registry: schools get their own report, the
    university and the IRO the evaluation report (a starting point researchers then edit)."""
    registry = load_registry(registry_path)
    table = pd.DataFrame({"institution": registry["id"], "name": registry["name"],
                          "emails": registry["email"], "language": registry["language"],
                          "report": ["institution" if t == "school" else "evaluation" for t in registry["type"]]})
    write_outputs({output: table})


def attachment_for(recipient: Recipient, reports_dir: str | Path) -> Path:
    """The report a recipient gets: its school's report, or the evaluation report in its language."""
    reports_dir = Path(reports_dir)
    if recipient.report == "evaluation":
        return reports_dir / f"evaluation.{recipient.language}.pdf"
    return reports_dir / "institutions" / f"{recipient.institution}.pdf"


def display_name(recipient: Recipient, registry: pd.DataFrame) -> str:
    """The institution's name in the recipient's language (the registry's name_en for English).
    ``registry``: indexed by id (looked up, not scanned, once per recipient)."""
    if recipient.language == "en" and "name_en" in registry and recipient.institution in registry.index:
        english = registry.at[recipient.institution, "name_en"]
        if english:
            return english
    return recipient.name

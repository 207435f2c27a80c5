"""Recipients: the recipients file (institution, name, addresses, language, report), which
report each recipient gets and under which name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dpo_eval.delivery.errors import DeliveryError
from dpo_eval.io import write_outputs
from dpo_eval.readers import read_export

REPORT_KINDS = ("institution", "evaluation")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


@dataclass(frozen=True)
class Recipient:
    institution: str
    name: str
    addresses: tuple[str, ...]
    language: str
    report: str



def load_recipients(path: str | Path, registry_ids: set[str] | None = None) -> list[Recipient]:
    """The recipients registry: institution id, name, e-mail addresses (';'-separated),
    language (ru/en) and report (institution or evaluation). Every problem is listed at once."""
    path = Path(path)
    # The survey readers: any encoding and separator Excel saves, spreadsheet row numbers.
    frame = read_export(path).frame
    problems, recipients, seen = [], [], set()
    required = {"institution", "name", "emails", "language", "report"}
    if not required <= set(frame.columns):
        raise DeliveryError(f"{path}: columns {sorted(required - set(frame.columns))} missing; "
                            f"expected {sorted(required)}")
    for number, row in zip(frame.index, frame.to_dict("records")):
        where = f"{path}, row {number}"
        addresses = tuple(a.strip() for a in row["emails"].split(";") if a.strip())
        if not addresses:
            problems.append(f"{where}, column 'emails': no address")
        for address in addresses:
            if not EMAIL.match(address):
                problems.append(f"{where}, column 'emails': '{address}' is not a valid e-mail address")
        if len(set(addresses)) != len(addresses):
            problems.append(f"{where}, column 'emails': an address occurs twice")
        if row["language"] not in ("ru", "en"):
            problems.append(f"{where}, column 'language': '{row['language']}' is not ru or en")
        if row["report"] not in REPORT_KINDS:
            problems.append(f"{where}, column 'report': '{row['report']}' is not one of {REPORT_KINDS}")
        if registry_ids is not None and row["institution"] not in registry_ids:
            problems.append(f"{where}, column 'institution': '{row['institution']}' is not in the institutions registry")
        if row["institution"] in seen:
            problems.append(f"{where}, column 'institution': '{row['institution']}' occurs twice")
        seen.add(row["institution"])
        recipients.append(Recipient(row["institution"], row["name"], addresses, row["language"], row["report"]))
    if problems:
        raise DeliveryError("the recipients registry is not valid (fix these rows):\n  - " + "\n  - ".join(problems))
    return recipients


def recipients_from_registry(registry_path: str | Path, output: str | Path) -> None:
    """A recipients registry from the institutions registry: schools get their own report, the
    university and the IRO the evaluation report (a starting point researchers then edit)."""
    registry = pd.read_csv(registry_path, dtype=str, keep_default_na=False)
    table = pd.DataFrame({"institution": registry["id"], "name": registry["name"],
                          "emails": registry["email"], "language": registry["language"],
                          "report": ["institution" if t == "school" else "evaluation" for t in registry["type"]]})
    write_outputs({output: table})



def attachment_for(recipient: Recipient, reports_dir: str | Path) -> Path:
    reports_dir = Path(reports_dir)
    if recipient.report == "evaluation":
        return reports_dir / f"evaluation.{recipient.language}.pdf"
    return reports_dir / "institutions" / f"{recipient.institution}.pdf"



def display_name(recipient: Recipient, registry: pd.DataFrame) -> str:
    """The institution's name in the recipient's language (the registry's name_en for English)."""
    if recipient.language == "en" and "name_en" in registry:
        english = registry.loc[registry["id"] == recipient.institution, "name_en"]
        if len(english) and english.iloc[0]:
            return english.iloc[0]
    return recipient.name



"""The outbox: one ``.eml`` per recipient, ``manifest.csv`` (who gets what, with the SHA-256 of
every message and attachment) and ``inputs.csv`` (the SHA-256 of every input it was built from
and of the configuration), and the check that an outbox is still the product of its inputs."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import jinja2
import pandas as pd
import yaml

from dpo_eval.core.config import config_digest
from dpo_eval.delivery.errors import DeliveryError, StaleOutboxError
from dpo_eval.delivery.message import build_message
from dpo_eval.delivery.project import in_project
from dpo_eval.delivery.recipients import attachment_for, display_name
from dpo_eval.core.io import sha256_file, write_outputs
from dpo_eval.core.registry import check_recipient_coverage, load_recipients, load_registry

INPUTS_FILE = "inputs.csv"
# Configuration that only says how to send, not what: changing it does not make an outbox stale.
SENDING_ONLY_KEYS = ("delivery.smtp", "delivery.ledger")


def school_reports_with_own_figure(reports_dir: str | Path) -> dict[str, bool]:
    """Per school, whether its report carries a score figure of its own team or municipality
    (``scores_figure`` of the school reports' index.csv; {} without an index)."""
    index = Path(reports_dir) / "institutions" / "index.csv"
    if not index.exists():
        return {}
    table = pd.read_csv(index, dtype={"institution": str})
    return dict(zip(table["institution"], table["scores_figure"].astype(bool)))


def outbox_config_digest(config: dict) -> str:
    """``config_digest`` of the configuration that shapes the outbox and the reports: everything
    except how to send (delivery.smtp, delivery.ledger)."""
    return config_digest(config, ignore=SENDING_ONLY_KEYS)


def input_digests(files: list[str | Path], project: Path, configuration: str) -> pd.DataFrame:
    """SHA-256 of every input of the run (raw data, registries, templates) with paths relative
    to the project, and ``configuration`` (``outbox_config_digest``) as path ``(configuration)``."""
    rows = []
    for name in sorted({str(f) for f in files}):
        path = Path(name)
        absolute = path if path.is_absolute() else project / path
        with contextlib.suppress(ValueError):
            path = absolute.resolve().relative_to(project.resolve())
        rows.append({"path": path.as_posix(), "sha256": sha256_file(absolute)})
    rows.append({"path": "(configuration)", "sha256": configuration})
    return pd.DataFrame(rows, columns=["path", "sha256"])


def write_outbox(config: dict, recipients_path: str | Path, registry_path: str | Path,
                 reports_dir: str | Path, template_path: str | Path, i18n_dir: str | Path,
                 outbox_dir: str | Path, manifest_path: str | Path | None = None,
                 provenance: list[str | Path] | None = None, configuration: str | None = None,
                 project: str | Path | None = None) -> None:
    """One .eml per recipient, the manifest of who gets what (with the SHA-256 of each message
    and attachment), and ``inputs.csv``, the digests of the inputs the outbox was built from
    (``configuration``: ``outbox_config_digest`` of the whole configuration, computed by the
    caller, since a step sees only its own settings). Any other file in ``outbox_dir`` (the
    message of a withdrawn recipient) is removed: the directory holds this outbox only."""
    project = Path(project or Path.cwd())
    outbox_dir = Path(outbox_dir)
    manifest_path = Path(manifest_path or outbox_dir / "manifest.csv")
    settings = config["delivery"]
    registry = load_registry(registry_path)
    recipients = load_recipients(recipients_path, set(registry["id"]))
    check_recipient_coverage(registry, recipients, settings.get("no_recipient", ()), recipients_path)
    template = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(template_path).parent)),
                                  undefined=jinja2.StrictUndefined, autoescape=False,
                                  keep_trailing_newline=True).get_template(Path(template_path).name)
    own_figure = school_reports_with_own_figure(reports_dir)
    # Read once per language and institution, not per recipient: the outbox stays linear with a
    # small constant in the number of schools.
    strings_of = {lang: yaml.safe_load((Path(i18n_dir) / f"{lang}.yaml").read_text(encoding="utf-8"))
                  for lang in sorted({recipient.language for recipient in recipients})}
    registry_names = registry.set_index("id")
    outputs, rows = {}, []
    for recipient in recipients:
        strings = strings_of[recipient.language]
        attachment = attachment_for(recipient, reports_dir)
        if not attachment.exists():
            raise DeliveryError(f"{recipient.institution}: its report {attachment} does not exist")
        data = build_message(recipient, attachment, settings["sender"], settings["sender_name"], template,
                             strings, display_name(recipient, registry_names))
        path = outbox_dir / f"{recipient.institution}.eml"
        outputs[path] = data
        rows.append({"institution": recipient.institution, "emails": ";".join(recipient.addresses),
                     "language": recipient.language, "report": recipient.report,
                     "attachment": str(attachment), "attachment_sha256": sha256_file(attachment),
                     "message": path.name, "message_sha256": hashlib.sha256(data).hexdigest(),
                     "own_figure": ("" if recipient.report == "evaluation"
                                    else "yes" if own_figure.get(recipient.institution) else "no")})
    outputs[manifest_path] = pd.DataFrame(rows)
    outputs[manifest_path.parent / INPUTS_FILE] = input_digests(
        [recipients_path, registry_path, template_path, *(provenance or [])], project,
        configuration if configuration is not None else outbox_config_digest(config))
    write_outputs(outputs)
    for stale in set(outbox_dir.iterdir()) - set(map(Path, outputs)):
        if stale.is_file():
            stale.unlink()


def check_outbox_current(manifest_path: str | Path, project: Path, config: dict) -> pd.DataFrame:
    """The manifest, after checking that the outbox is the product of the current inputs: every
    recorded input still has its digest, the configuration is the same, every message is the one
    the manifest names, and no report differs from the one attached. A report that is missing
    (removed by a rebuild that failed) does not make the outbox stale: its message carries it,
    and the digests above show that nothing it was built from has changed. Raises
    StaleOutboxError naming what differs."""
    manifest_path = Path(manifest_path)
    rerun = ("rerun the pipeline (snakemake --cores 4) and send when it has finished without "
             "errors; nothing was sent")
    if not manifest_path.is_file():
        raise StaleOutboxError(f"there is no outbox ({manifest_path} does not exist): {rerun}")
    inputs_path = manifest_path.parent / INPUTS_FILE
    if not inputs_path.is_file():
        raise StaleOutboxError(f"{inputs_path} is missing, so the outbox cannot be checked against "
                               f"its inputs: {rerun}")
    manifest = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    if "message_sha256" not in manifest:
        raise StaleOutboxError(f"{manifest_path} was written by an older version: {rerun}")
    changed = []
    for row in pd.read_csv(inputs_path, dtype=str, keep_default_na=False).itertuples():
        if row.path == "(configuration)":
            if outbox_config_digest(config) != row.sha256:
                changed.append("the configuration")
            continue
        path = in_project(project, row.path)
        if not path.is_file():
            changed.append(f"{row.path} (missing)")
        elif sha256_file(path) != row.sha256:
            changed.append(row.path)
    for row in manifest.itertuples():
        message = manifest_path.parent / row.message
        attachment = in_project(project, row.attachment)
        if not message.is_file() or sha256_file(message) != row.message_sha256:
            changed.append(f"{message.name} (message)")
        if attachment.is_file() and sha256_file(attachment) != row.attachment_sha256:
            changed.append(f"{row.attachment} (report)")
    if changed:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        raise StaleOutboxError(f"the outbox is not the product of the current inputs: changed since it "
                               f"was built: {shown}; {rerun}")
    return manifest


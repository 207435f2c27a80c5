"""Delivery of the reports by e-mail: recipients, a deterministic outbox, and an SMTP sender with
a persistent ledger so that no institution gets a message twice or another's report.

The default DAG only writes the outbox (``results/outbox/{institution}.eml``); sending is a
separate, explicit step (``snakemake --cores 1 send`` or ``python -m dpo_eval.delivery send``).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import re
import smtplib
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

import jinja2
import pandas as pd
import yaml

from dpo_eval.errors import UserError
from dpo_eval.io import sha256_file, write_outputs
from dpo_eval.readers import read_export

REPORT_KINDS = ("institution", "evaluation")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
PASSWORD_ENV = "DPO_EVAL_SMTP_PASSWORD"


class DeliveryError(UserError, RuntimeError):
    """A problem that stops delivery before anything is sent; the message says what to do."""


@dataclass(frozen=True)
class Recipient:
    institution: str
    name: str
    addresses: tuple[str, ...]
    language: str
    report: str


# --------------------------------------------------------------------------- recipients


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


# --------------------------------------------------------------------------- outbox


def attachment_for(recipient: Recipient, reports_dir: str | Path) -> Path:
    reports_dir = Path(reports_dir)
    if recipient.report == "evaluation":
        return reports_dir / f"evaluation.{recipient.language}.pdf"
    return reports_dir / "institutions" / f"{recipient.institution}.pdf"


def build_message(recipient: Recipient, attachment: Path, sender: str, sender_name: str,
                  body_template: jinja2.Template, strings: dict, report_date: str) -> bytes:
    """An RFC 5322 message with the body in the recipient's language and one PDF attached;
    boundary, Message-ID and Date are derived from the content and the report date, so that
    the same inputs give the same bytes."""
    pdf = attachment.read_bytes()
    digest = hashlib.sha256(pdf + recipient.institution.encode() + ";".join(recipient.addresses).encode()).hexdigest()
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = formataddr((sender_name, sender))
    message["To"] = ", ".join(recipient.addresses)
    message["Subject"] = strings["email_subject"]
    message["Date"] = format_datetime(datetime.fromisoformat(report_date).replace(hour=9, tzinfo=timezone.utc))
    message["Message-ID"] = f"<{digest[:32]}@dpo-eval.invalid>"
    message["X-DPO-Eval-Institution"] = recipient.institution
    message["X-DPO-Eval-Attachment-SHA256"] = hashlib.sha256(pdf).hexdigest()
    message.set_content(body_template.render(t=strings, name=recipient.name, report=recipient.report))
    filename = attachment.name if recipient.report == "evaluation" else f"report_{recipient.institution}.pdf"
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=filename)
    message.set_boundary(f"=_dpo_eval_{digest[:24]}")
    return message.as_bytes()


def write_outbox(config: dict, recipients_path: str | Path, registry_path: str | Path,
                 reports_dir: str | Path, template_path: str | Path, i18n_dir: str | Path,
                 outbox_dir: str | Path, manifest_path: str | Path) -> None:
    """One .eml per recipient and a manifest of who gets what."""
    registry = pd.read_csv(registry_path, dtype=str, keep_default_na=False)
    recipients = load_recipients(recipients_path, set(registry["id"]))
    settings = config["delivery"]
    template = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(template_path).parent)),
                                  undefined=jinja2.StrictUndefined, autoescape=False,
                                  keep_trailing_newline=True).get_template(Path(template_path).name)
    outputs, rows = {}, []
    for recipient in recipients:
        strings = yaml.safe_load((Path(i18n_dir) / f"{recipient.language}.yaml").read_text(encoding="utf-8"))
        attachment = attachment_for(recipient, reports_dir)
        if not attachment.exists():
            raise DeliveryError(f"{recipient.institution}: its report {attachment} does not exist")
        data = build_message(recipient, attachment, settings["sender"], settings["sender_name"], template,
                             strings, config["study"]["report_date"])
        path = Path(outbox_dir) / f"{recipient.institution}.eml"
        outputs[path] = data
        rows.append({"institution": recipient.institution, "emails": ";".join(recipient.addresses),
                     "language": recipient.language, "report": recipient.report,
                     "attachment": str(attachment), "attachment_sha256": sha256_file(attachment),
                     "message": path.name})
    outputs[Path(manifest_path)] = pd.DataFrame(rows)
    write_outputs(outputs)


# --------------------------------------------------------------------------- ledger


class Ledger:
    """Append-only JSON-lines record of every send: 'sending' before, 'sent' or 'failed' after.

    A 'sending' record without its outcome means the process stopped between the two writes:
    whether the server accepted the message is unknown, so it is reported for a person to
    resolve (``resolve``), never retried or skipped silently."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            stream.flush()
            os.fsync(stream.fileno())

    def state(self) -> dict[tuple[str, str], dict]:
        """Latest record per (institution, recipient address)."""
        latest = {}
        for record in self.records():
            latest[(record["institution"], record["recipient"])] = record
        return latest

    def resolve(self, institution: str, recipient: str, status: str, note: str) -> None:
        """A person's decision on an unresolved send: 'sent' (it arrived) or 'failed' (resend)."""
        previous = self.state().get((institution, recipient))
        if previous is None or previous["status"] != "sending":
            raise DeliveryError(f"nothing to resolve for {institution} <{recipient}>")
        self.append({**previous, "status": status, "time": _now(), "reply": f"resolved by hand: {note}"})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str           # starttls | ssl | none
    user: str | None
    password: str | None
    sender: str
    cafile: str | None
    allow_plain_local: bool
    rate_per_minute: float
    retries: int
    backoff_seconds: float
    timeout: float


def smtp_settings(config: dict) -> SmtpSettings:
    """SMTP settings from config, overridden by DPO_EVAL_SMTP_HOST/PORT/USER/SENDER/CAFILE; the
    password only from the environment (DPO_EVAL_SMTP_PASSWORD)."""
    smtp = config["delivery"]["smtp"]
    env = os.environ
    return SmtpSettings(
        host=env.get("DPO_EVAL_SMTP_HOST", smtp["host"]),
        port=int(env.get("DPO_EVAL_SMTP_PORT", smtp["port"])),
        security=smtp["security"],
        user=env.get("DPO_EVAL_SMTP_USER", smtp.get("user")) or None,
        password=env.get(PASSWORD_ENV) or None,
        sender=env.get("DPO_EVAL_SMTP_SENDER", config["delivery"]["sender"]),
        cafile=env.get("DPO_EVAL_SMTP_CAFILE", smtp.get("cafile")) or None,
        allow_plain_local=bool(smtp.get("allow_plaintext_auth_on_loopback", False)),
        rate_per_minute=float(smtp.get("rate_per_minute", 30)),
        retries=int(smtp.get("retries", 3)),
        backoff_seconds=float(smtp.get("backoff_seconds", 5)),
        timeout=float(smtp.get("timeout_seconds", 30)),
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """An authenticated connection; refuses to send a password without TLS unless the server
    is on this machine and the config says so by name."""
    context = ssl.create_default_context(cafile=settings.cafile)
    if settings.security == "ssl":
        server = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        server = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        server.ehlo()
        if settings.security == "starttls":
            if not server.has_extn("starttls"):
                raise DeliveryError(f"{settings.host}:{settings.port} offers no STARTTLS; nothing was sent. "
                                    "Use security: ssl with the server's TLS port, or another server")
            server.starttls(context=context)
            server.ehlo()
        elif settings.security == "none" and settings.user:
            if not (settings.allow_plain_local and _is_loopback(settings.host)):
                raise DeliveryError("refusing to send a password over an unencrypted connection; use "
                                    "starttls or ssl (allow_plaintext_auth_on_loopback is for a local test server only)")
        if settings.user:
            if settings.password is None:
                raise DeliveryError(f"set the SMTP password in the environment variable {PASSWORD_ENV}")
            try:
                # One mechanism, not smtplib's try-them-all: a refusal is then a plain 535.
                if "PLAIN" in server.esmtp_features.get("auth", "").upper().split():
                    server.user, server.password = settings.user, settings.password
                    server.auth("PLAIN", server.auth_plain)
                else:
                    server.login(settings.user, settings.password)
            except smtplib.SMTPAuthenticationError as exc:
                raise DeliveryError(f"the server refused the login of '{settings.user}' ({exc.smtp_code} "
                                    f"{exc.smtp_error.decode(errors='replace')}); nothing was sent") from exc
        return server
    except BaseException:
        server.close()
        raise


@dataclass
class SendSummary:
    sent: list[str]
    skipped: list[str]
    failed: list[str]
    deferred: list[str]
    unresolved: list[str]

    def lines(self) -> list[str]:
        return [f"sent: {len(self.sent)}", f"already sent, skipped: {len(self.skipped)}",
                f"failed permanently (5xx): {len(self.failed)} {self.failed}",
                f"deferred (4xx after retries; rerun to retry): {len(self.deferred)} {self.deferred}",
                f"unresolved (stopped between ledger writes; resolve by hand): {len(self.unresolved)} {self.unresolved}"]


def plan(manifest: pd.DataFrame, ledger: Ledger, resend_changed: bool) -> list[dict]:
    """Per message and address: send, skip (already delivered with this attachment), resend (the
    report changed and resending was asked for), changed (changed, not asked) or unresolved."""
    state = ledger.state()
    actions = []
    for row in manifest.to_dict(orient="records"):
        for address in row["emails"].split(";"):
            previous = state.get((row["institution"], address))
            if previous is None or previous["status"] in ("failed", "deferred"):
                action = "send"
            elif previous["status"] == "sending":
                action = "unresolved"
            elif previous["attachment_sha256"] == row["attachment_sha256"]:
                action = "skip"
            else:
                action = "resend" if resend_changed else "changed"
            actions.append({**row, "address": address, "action": action})
    return actions


def send_outbox(manifest_path: str | Path, ledger_path: str | Path, settings: SmtpSettings,
                resend_changed: bool = False, sleep=time.sleep) -> SendSummary:
    """Send every outbox message not yet delivered, one SMTP transaction per address, with the
    ledger written before and after each; 4xx replies are retried with exponential backoff."""
    manifest = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    ledger = Ledger(ledger_path)
    actions = plan(manifest, ledger, resend_changed)
    summary = SendSummary([], [], [], [], [])
    for action in actions:
        label = f"{action['institution']} <{action['address']}>"
        if action["action"] in ("skip", "changed"):
            summary.skipped.append(label)
        elif action["action"] == "unresolved":
            summary.unresolved.append(label)
    todo = [a for a in actions if a["action"] in ("send", "resend")]
    if not todo:
        return summary
    server = connect(settings)
    interval = 60.0 / settings.rate_per_minute if settings.rate_per_minute > 0 else 0.0
    try:
        for index, action in enumerate(todo):
            if index and interval:
                sleep(interval)
            # Messages lie next to the manifest, whatever the current directory.
            data = (Path(manifest_path).parent / action["message"]).read_bytes()
            message_id = re.search(rb"^Message-ID: (.+?)\r?$", data, re.M | re.I).group(1).decode()
            record = {"institution": action["institution"], "recipient": action["address"],
                      "attachment_sha256": action["attachment_sha256"], "message_id": message_id}
            label = f"{action['institution']} <{action['address']}>"
            for attempt in range(settings.retries + 1):
                ledger.append({**record, "status": "sending", "time": _now(), "reply": "", "attempt": attempt + 1})
                try:
                    server.sendmail(settings.sender, [action["address"]], data)
                except smtplib.SMTPRecipientsRefused as exc:
                    code, reply = next(iter(exc.recipients.values()))
                except smtplib.SMTPResponseException as exc:
                    code, reply = exc.smtp_code, exc.smtp_error
                else:
                    ledger.append({**record, "status": "sent", "time": _now(), "reply": "250 accepted",
                                   "attempt": attempt + 1})
                    summary.sent.append(label)
                    break
                reply_text = f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
                if 400 <= code < 500 and attempt < settings.retries:
                    ledger.append({**record, "status": "deferred", "time": _now(), "reply": reply_text,
                                   "attempt": attempt + 1})
                    sleep(settings.backoff_seconds * 2**attempt)
                    continue
                status = "failed" if code >= 500 else "deferred"
                ledger.append({**record, "status": status, "time": _now(), "reply": reply_text,
                               "attempt": attempt + 1})
                (summary.failed if status == "failed" else summary.deferred).append(label)
                break
    finally:
        try:
            server.quit()
        except smtplib.SMTPException:
            server.close()
    return summary


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dpo_eval.delivery",
                                     description="Send the outbox by SMTP, or show who would get what.")
    parser.add_argument("command", choices=["plan", "send", "resolve"])
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--manifest", type=Path, default=Path("results/outbox/manifest.csv"))
    parser.add_argument("--ledger", type=Path, help="default: delivery.ledger of the config")
    parser.add_argument("--resend-changed", action="store_true",
                        help="resend to institutions whose report changed since it was sent")
    parser.add_argument("--institution")
    parser.add_argument("--recipient")
    parser.add_argument("--status", choices=["sent", "failed"])
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    ledger_path = args.ledger or Path(config["delivery"]["ledger"])
    try:
        if args.command == "plan":
            manifest = pd.read_csv(args.manifest, dtype=str, keep_default_na=False)
            for action in plan(manifest, Ledger(ledger_path), args.resend_changed):
                print(f"{action['action']:<10} {action['institution']:<12} {action['address']:<40} "
                      f"{Path(action['attachment']).name} ({action['report']}, {action['language']})")
            return 0
        if args.command == "resolve":
            Ledger(ledger_path).resolve(args.institution, args.recipient, args.status, args.note)
            return 0
        summary = send_outbox(args.manifest, ledger_path, smtp_settings(config), args.resend_changed)
    except DeliveryError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    return 1 if summary.failed or summary.deferred or summary.unresolved else 0


if __name__ == "__main__":
    sys.exit(main())

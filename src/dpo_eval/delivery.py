"""Delivery of the reports by e-mail: recipients, a deterministic outbox, and an SMTP sender with
a persistent ledger so that no institution gets a message twice, a stale one, or another's report.

The default DAG only writes the outbox (``results/outbox/``: one ``.eml`` per recipient, the
``manifest.csv`` of who gets what with the SHA-256 of every message and attachment, and
``inputs.csv``, the SHA-256 of every input the outbox was built from). Sending is a separate,
explicit step (``snakemake --cores 1 send`` or ``python -m dpo_eval.delivery send``) that

* holds an exclusive lock (``fcntl.flock`` on ``<ledger>.lock``) for the whole send, so that two
  senders started at once cannot both deliver a message;
* refuses an outbox that does not match the current inputs, configuration and code (a rerun that
  failed after an input changed leaves the previous run's outbox behind: it is not sent);
* stamps each message with the send date and a fresh Message-ID, both kept in the ledger.

Exit codes of ``python -m dpo_eval.delivery`` (also in README.md): 0 done, 1 some messages not
delivered (failed, deferred or unresolved), 2 invalid command line, configuration or
recipients, 3 stale outbox, 4 reports changed since they were sent, 5 another sender holds the
lock, 6 cannot connect, 7 TLS failure (untrusted certificate, no STARTTLS), 8 CA file missing or
unreadable, 9 login refused or password missing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Callable

import jinja2
import pandas as pd
import yaml

from dpo_eval.config import ConfigError, load_yaml, validate_config
from dpo_eval.errors import UserError
from dpo_eval.io import sha256_file, write_outputs
from dpo_eval.readers import read_export

REPORT_KINDS = ("institution", "evaluation")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
PASSWORD_ENV = "DPO_EVAL_SMTP_PASSWORD"
CONFIG_SCHEMA = Path("workflow/schemas/config.schema.yaml")
DEFAULT_CONFIG = Path("config/config.yaml")
DEFAULT_MANIFEST = Path("results/outbox/manifest.csv")
INPUTS_FILE = "inputs.csv"
# Configuration that only says how to send, not what: changing it does not make an outbox stale.
SENDING_ONLY_KEYS = ("smtp", "ledger")


# --------------------------------------------------------------------------- errors


class DeliveryError(UserError, RuntimeError):
    """A problem that stops delivery before anything (more) is sent; the message says what to
    do. ``exit_code`` is the command's exit status (see the module docstring)."""

    exit_code = 2


class StaleOutboxError(DeliveryError):
    exit_code = 3


class ChangedReportsError(DeliveryError):
    exit_code = 4


class SenderBusyError(DeliveryError):
    exit_code = 5


class SmtpConnectionError(DeliveryError):
    exit_code = 6


class SmtpTlsError(DeliveryError):
    exit_code = 7


class CaFileError(DeliveryError):
    exit_code = 8


class SmtpLoginError(DeliveryError):
    exit_code = 9


@dataclass(frozen=True)
class Recipient:
    institution: str
    name: str
    addresses: tuple[str, ...]
    language: str
    report: str


# --------------------------------------------------------------------------- project and config


def find_project(start: str | Path | None = None) -> Path:
    """The project directory: the nearest of ``start`` (default: the current directory) and its
    parents that holds a Snakefile and config/config.yaml, so that the ledger and the outbox are
    the same whatever folder of the project a command is run from."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Snakefile").is_file() and (folder / DEFAULT_CONFIG).is_file():
            return folder
    raise DeliveryError(f"{here} is not inside a dpo_eval project (no Snakefile and config/config.yaml "
                        "in it or its parents); run the command in the project or give --project")


def load_delivery_config(project: Path, config_path: Path | None = None) -> dict:
    """The configuration, validated against the pipeline's schema exactly as Snakemake does."""
    path = config_path if config_path is not None else project / DEFAULT_CONFIG
    try:
        return validate_config(load_yaml(path), project / CONFIG_SCHEMA, source=str(path))
    except ConfigError as exc:
        raise DeliveryError(str(exc)) from exc


def in_project(project: Path, path: str | Path) -> Path:
    """``path`` as given, or relative to the project directory when it is relative."""
    path = Path(path)
    return path if path.is_absolute() else project / path


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


# --------------------------------------------------------------------------- names and headers

# Russian to Latin after GOST R 52535.1-2006 (the ICAO Doc 9303 table used in Russian passports):
# letters only, no apostrophes, so that the result is a safe file name on every system.
GOST_52535 = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "ie", "ы": "y", "ь": "", "э": "e", "ю": "iu", "я": "ia", "№": "No",
}


def transliterate(text: str) -> str:
    """Latin letters for Russian text (GOST R 52535.1-2006); a word written in capitals stays in
    capitals (СОШ -> SOSH), a capitalised one capitalised (Хабаровск -> Khabarovsk)."""
    words = []
    for word in re.split(r"(\s+)", text):
        upper_word = len(word) > 1 and word.isupper()
        out = []
        for char in word:
            latin = GOST_52535.get(char.lower())
            if latin is None:
                out.append(char)
            elif char.isupper():
                out.append(latin.upper() if upper_word else latin.capitalize())
            else:
                out.append(latin)
        words.append("".join(out))
    return "".join(words)


def safe_filename(name: str, suffix: str, limit: int = 80) -> str:
    """A file name of ASCII letters, digits and underscores for ``name`` (transliterated)."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", transliterate(name)).strip("_")[:limit].rstrip("_")
    return f"{stem or 'report'}{suffix}"


def encode_display_name(name: str, address: str) -> str:
    """``name <address>`` for an address header, readable back unchanged by RFC 2047 parsers
    and by Python's ``email.policy.default``.

    Runs of words that are not plain ASCII atoms become ONE encoded word each, never two
    adjacent encoded words: RFC 2047 drops the white space between adjacent encoded words, while
    Python's address parser keeps it, so any split inside a run is read differently by the two
    (Python's own folding splits inside words: "программ ы"). An encoded word can therefore
    exceed RFC 2047's 75 characters for a very long run; parsers accept that, lines stay far
    below the 998-character limit of RFC 5322."""
    atext = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")
    tokens, run = [], []

    def flush():
        if run:
            encoded = base64.b64encode(" ".join(run).encode("utf-8")).decode("ascii")
            tokens.append(f"=?utf-8?b?{encoded}?=")
            run.clear()

    for word in name.split(" "):
        if atext.match(word):
            flush()
            tokens.append(word)
        else:
            run.append(word)
    flush()
    return f"{' '.join(tokens)} <{address}>" if tokens else address


def _replace_header(data: bytes, name: str, value: str | None) -> bytes:
    """``data`` with the header ``name`` (and its folded continuation lines) replaced by
    ``value``, or removed when ``value`` is None; a missing header is added at the top."""
    head, separator, body = data.partition(b"\r\n\r\n")
    lines, kept, skipping = head.split(b"\r\n"), [], False
    prefix = name.lower().encode("ascii") + b":"
    found = False
    for line in lines:
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = line.lower().startswith(prefix)
        if skipping:
            if value is not None and not found:
                kept.append(f"{name}: {value}".encode("ascii"))
            found = True
            continue
        kept.append(line)
    if not found and value is not None:
        kept.insert(0, f"{name}: {value}".encode("ascii"))
    return b"\r\n".join(kept) + separator + body


def header_value(data: bytes, name: str) -> str | None:
    """The raw value of header ``name`` in a message's bytes (None when absent)."""
    head = data.partition(b"\r\n\r\n")[0].decode("ascii", errors="replace")
    match = re.search(rf"^{re.escape(name)}:[ \t]*(.*(?:\r\n[ \t].*)*)", head, re.M | re.I)
    return re.sub(r"\r\n[ \t]", " ", match.group(1)) if match else None


def stamp(data: bytes, sender: str, now: datetime | None = None) -> tuple[bytes, str, str]:
    """The message as actually sent: the outbox bytes with the send date and a fresh
    Message-ID (RFC 5322 sections 3.6.1 and 3.6.4). Returns (bytes, Message-ID, Date)."""
    now = now or datetime.now(timezone.utc)
    date = format_datetime(now.astimezone(timezone.utc).replace(microsecond=0))
    message_id = make_msgid(domain=sender.rpartition("@")[2] or None)
    data = _replace_header(data, "Message-ID", message_id)
    data = _replace_header(data, "Date", date)
    return data, message_id, date


# --------------------------------------------------------------------------- outbox


def attachment_for(recipient: Recipient, reports_dir: str | Path) -> Path:
    reports_dir = Path(reports_dir)
    if recipient.report == "evaluation":
        return reports_dir / f"evaluation.{recipient.language}.pdf"
    return reports_dir / "institutions" / f"{recipient.institution}.pdf"


def school_reports_with_own_figure(reports_dir: str | Path) -> dict[str, bool]:
    """Per school, whether its report carries a score figure of its own team or municipality
    (``scores_figure`` of the school reports' index.csv; {} without an index)."""
    index = Path(reports_dir) / "institutions" / "index.csv"
    if not index.exists():
        return {}
    table = pd.read_csv(index, dtype={"institution": str})
    return dict(zip(table["institution"], table["scores_figure"].astype(bool)))


def display_name(recipient: Recipient, registry: pd.DataFrame) -> str:
    """The institution's name in the recipient's language (the registry's name_en for English)."""
    if recipient.language == "en" and "name_en" in registry:
        english = registry.loc[registry["id"] == recipient.institution, "name_en"]
        if len(english) and english.iloc[0]:
            return english.iloc[0]
    return recipient.name


def attachment_name(recipient: Recipient, school_name: str, attachment: Path) -> str:
    if recipient.report == "evaluation":
        return attachment.name
    return safe_filename(school_name, f".{recipient.language}.pdf" if recipient.language == "en" else ".pdf")


def build_message(recipient: Recipient, attachment: Path, sender: str, sender_name: str,
                  body_template: jinja2.Template, strings: dict, school_name: str | None = None) -> bytes:
    """An RFC 5322 message with the body in the recipient's language and one PDF attached,
    named after the school. Deterministic: the boundary derives from the content; Date and
    Message-ID are added when the message is sent (``stamp``), not here."""
    school_name = school_name or recipient.name
    pdf = attachment.read_bytes()
    digest = hashlib.sha256(pdf + recipient.institution.encode() + ";".join(recipient.addresses).encode()).hexdigest()
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender  # replaced below by the encoded display name
    message["To"] = ", ".join(recipient.addresses)
    subject = strings["email_subject"]
    message["Subject"] = f"{subject}: {school_name}" if recipient.report == "institution" else subject
    message["X-DPO-Eval-Institution"] = recipient.institution
    message["X-DPO-Eval-Attachment-SHA256"] = hashlib.sha256(pdf).hexdigest()
    message.set_content(body_template.render(t=strings, name=recipient.name, report=recipient.report))
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=attachment_name(recipient, school_name, attachment))
    message.set_boundary(f"=_dpo_eval_{digest[:24]}")
    return _replace_header(message.as_bytes(), "From", encode_display_name(sender_name, sender))


def outbox_config_digest(config: dict) -> str:
    """SHA-256 of the configuration that shapes the outbox and the reports: everything except
    how to send (delivery.smtp, delivery.ledger) and Snakemake's own switches."""
    relevant = {key: value for key, value in config.items() if key != "reproduce"}
    relevant["delivery"] = {key: value for key, value in config.get("delivery", {}).items()
                            if key not in SENDING_ONLY_KEYS}
    canonical = json.dumps(relevant, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
    caller, since a step sees only its own settings)."""
    project = Path(project or Path.cwd())
    outbox_dir = Path(outbox_dir)
    manifest_path = Path(manifest_path or outbox_dir / "manifest.csv")
    registry = pd.read_csv(registry_path, dtype=str, keep_default_na=False)
    recipients = load_recipients(recipients_path, set(registry["id"]))
    settings = config["delivery"]
    template = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(template_path).parent)),
                                  undefined=jinja2.StrictUndefined, autoescape=False,
                                  keep_trailing_newline=True).get_template(Path(template_path).name)
    own_figure = school_reports_with_own_figure(reports_dir)
    outputs, rows = {}, []
    for recipient in recipients:
        strings = yaml.safe_load((Path(i18n_dir) / f"{recipient.language}.yaml").read_text(encoding="utf-8"))
        attachment = attachment_for(recipient, reports_dir)
        if not attachment.exists():
            raise DeliveryError(f"{recipient.institution}: its report {attachment} does not exist")
        data = build_message(recipient, attachment, settings["sender"], settings["sender_name"], template,
                             strings, display_name(recipient, registry))
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


def check_outbox_current(manifest_path: str | Path, project: Path, config: dict) -> pd.DataFrame:
    """The manifest, after checking that the outbox is the product of the current inputs: every
    recorded input still has its digest, the configuration is the same, and every message and
    attachment is the one the manifest names. Raises StaleOutboxError naming what differs."""
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
        if not attachment.is_file() or sha256_file(attachment) != row.attachment_sha256:
            changed.append(f"{row.attachment} (report)")
    if changed:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        raise StaleOutboxError(f"the outbox is not the product of the current inputs: changed since it "
                               f"was built: {shown}; {rerun}")
    return manifest


# --------------------------------------------------------------------------- ledger


class Ledger:
    """Append-only JSON-lines record of every send: 'sending' before, 'sent', 'failed' or
    'deferred' after.

    A 'sending' record without its outcome means the process stopped between the two writes (or
    the connection broke after the message was transmitted): whether the server accepted it is
    unknown, so it is reported for a person to resolve (``resolve``), never retried or skipped
    silently."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def exclusive(self, timeout: float = 0.0, poll: float = 0.2):
        """Hold the ledger's lock (``fcntl.flock`` on ``<ledger>.lock``, released by the operating
        system if the process dies) for the whole block; wait at most ``timeout`` seconds for
        another sender to finish, then stop with SenderBusyError."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+", encoding="utf-8") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "unknown process"
                        raise SenderBusyError(
                            f"another delivery is running ({holder}; lock {self.lock_path}); nothing was "
                            "sent: wait until it has finished, or give --wait SECONDS") from None
                    time.sleep(poll)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} since {_now()}\n")
            handle.flush()
            try:
                yield self
            finally:
                handle.seek(0)
                handle.truncate()
                handle.flush()
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

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
        if status not in ("sent", "failed"):
            raise DeliveryError(f"resolve needs --status sent (it arrived) or failed (send again), not {status!r}")
        with self.exclusive():
            previous = self.state().get((institution, recipient))
            if previous is None or previous["status"] != "sending":
                raise DeliveryError(f"nothing to resolve for {institution} <{recipient}>")
            self.append({**previous, "status": status, "time": _now(), "reply": f"resolved by hand: {note}"})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- connection


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


def smtp_settings(config: dict, project: Path | None = None) -> SmtpSettings:
    """SMTP settings from config, overridden by DPO_EVAL_SMTP_HOST/PORT/USER/SENDER/CAFILE; the
    password only from the environment (DPO_EVAL_SMTP_PASSWORD). A relative CA file is taken
    relative to the project."""
    smtp = config["delivery"]["smtp"]
    env = os.environ
    cafile = env.get("DPO_EVAL_SMTP_CAFILE", smtp.get("cafile")) or None
    if cafile and project is not None:
        cafile = str(in_project(project, Path(cafile).expanduser()))
    try:
        port = int(env.get("DPO_EVAL_SMTP_PORT", smtp["port"]))
    except ValueError:
        raise DeliveryError(f"DPO_EVAL_SMTP_PORT={env['DPO_EVAL_SMTP_PORT']!r} is not a port number") from None
    return SmtpSettings(
        host=env.get("DPO_EVAL_SMTP_HOST", smtp["host"]),
        port=port,
        security=smtp["security"],
        user=env.get("DPO_EVAL_SMTP_USER", smtp.get("user")) or None,
        password=env.get(PASSWORD_ENV) or None,
        sender=env.get("DPO_EVAL_SMTP_SENDER", config["delivery"]["sender"]),
        cafile=cafile,
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


class _TransmissionTracking:
    """Notes when a message's data have been transmitted (the final CRLF.CRLF of DATA), so that
    a broken connection can be told apart: before that the server cannot have accepted the
    message (deferred, safe to retry); after it, acceptance is unknown (unresolved)."""

    data_transmitted = False

    def send(self, s):
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.data_transmitted = True


class _Smtp(_TransmissionTracking, smtplib.SMTP):
    pass


class _SmtpSsl(_TransmissionTracking, smtplib.SMTP_SSL):
    pass


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    if settings.cafile:
        if not Path(settings.cafile).is_file():
            raise CaFileError(f"the CA file {settings.cafile} (delivery.smtp.cafile or DPO_EVAL_SMTP_CAFILE) "
                              "does not exist; nothing was sent")
        try:
            return ssl.create_default_context(cafile=settings.cafile)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise CaFileError(f"the CA file {settings.cafile} cannot be read as PEM certificates ({exc}); "
                              "nothing was sent") from exc
    return ssl.create_default_context()


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """An authenticated connection; refuses to send a password without TLS unless the server
    is on this machine and the config says so by name. Connection, TLS and CA-file problems
    become one-line DeliveryErrors with their own exit codes."""
    where = f"{settings.host}:{settings.port}"
    context = tls_context(settings)
    try:
        if settings.security == "ssl":
            server = _SmtpSsl(settings.host, settings.port, timeout=settings.timeout, context=context)
        else:
            server = _Smtp(settings.host, settings.port, timeout=settings.timeout)
    except ssl.SSLCertVerificationError as exc:
        raise _untrusted(where, exc) from exc
    except ssl.SSLError as exc:
        raise SmtpTlsError(f"TLS with {where} failed ({exc.reason or exc}); nothing was sent") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SmtpConnectionError(f"cannot connect to the SMTP server {where} ({_reason(exc)}); check "
                                  "delivery.smtp.host and port (or DPO_EVAL_SMTP_HOST/PORT); nothing was sent") from exc
    try:
        server.ehlo()
        if settings.security == "starttls":
            if not server.has_extn("starttls"):
                raise SmtpTlsError(f"{where} offers no STARTTLS; nothing was sent. "
                                   "Use security: ssl with the server's TLS port, or another server")
            server.starttls(context=context)
            server.ehlo()
        elif settings.security == "none" and settings.user:
            if not (settings.allow_plain_local and _is_loopback(settings.host)):
                raise SmtpTlsError("refusing to send a password over an unencrypted connection; use "
                                   "starttls or ssl (allow_plaintext_auth_on_loopback is for a local test server only)")
        if settings.user:
            if settings.password is None:
                raise SmtpLoginError(f"set the SMTP password in the environment variable {PASSWORD_ENV}")
            try:
                # One mechanism, not smtplib's try-them-all: a refusal is then a plain 535.
                if "PLAIN" in server.esmtp_features.get("auth", "").upper().split():
                    server.user, server.password = settings.user, settings.password
                    server.auth("PLAIN", server.auth_plain)
                else:
                    server.login(settings.user, settings.password)
            except smtplib.SMTPAuthenticationError as exc:
                raise SmtpLoginError(f"the server refused the login of '{settings.user}' ({exc.smtp_code} "
                                     f"{exc.smtp_error.decode(errors='replace')}); nothing was sent") from exc
        return server
    except ssl.SSLCertVerificationError as exc:
        server.close()
        raise _untrusted(where, exc) from exc
    except ssl.SSLError as exc:
        server.close()
        raise SmtpTlsError(f"TLS with {where} failed ({exc.reason or exc}); nothing was sent") from exc
    except (OSError, smtplib.SMTPServerDisconnected) as exc:
        server.close()
        raise SmtpConnectionError(f"the SMTP server {where} closed the connection while it was being set up "
                                  f"({_reason(exc)}); nothing was sent") from exc
    except BaseException:
        server.close()
        raise


def _untrusted(where: str, exc: ssl.SSLCertVerificationError) -> SmtpTlsError:
    return SmtpTlsError(f"the TLS certificate of {where} is not trusted ({exc.verify_message or exc.reason}); "
                        "give the CA that signed it in delivery.smtp.cafile (or DPO_EVAL_SMTP_CAFILE); "
                        "nothing was sent")


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- sending


@dataclass
class SendSummary:
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    changed_skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"sent: {len(self.sent)}", f"already sent, skipped: {len(self.skipped)}",
                f"report changed since sent, not resent (--skip-changed): {len(self.changed_skipped)} "
                f"{self.changed_skipped}",
                f"failed permanently (5xx): {len(self.failed)} {self.failed}",
                f"deferred (4xx or connection lost before the server accepted it; rerun to retry): "
                f"{len(self.deferred)} {self.deferred}",
                f"unresolved (outcome unknown; resolve by hand): {len(self.unresolved)} {self.unresolved}"]


def plan(manifest: pd.DataFrame, ledger: Ledger, resend_changed: bool = False,
         skip_changed: bool = False) -> list[dict]:
    """Per message and address: send, skip (already delivered with this attachment), resend (the
    report changed and resending was asked for), skip-changed (changed, leaving it was asked
    for), changed (changed, nothing asked) or unresolved."""
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
                action = "resend" if resend_changed else "skip-changed" if skip_changed else "changed"
            actions.append({**row, "address": address, "action": action})
    return actions


def _label(action: dict) -> str:
    return f"{action['institution']} <{action['address']}>"


def send_outbox(manifest_path: str | Path, ledger_path: str | Path, settings: SmtpSettings,
                resend_changed: bool = False, sleep=time.sleep, skip_changed: bool = False,
                wait: float = 0.0, verify: Callable[[], object] | None = None) -> SendSummary:
    """Send every outbox message not yet delivered, one SMTP transaction per address, under the
    ledger's exclusive lock, with the ledger written before and after each transaction.

    ``verify`` (the command line passes the stale-outbox check) runs once the lock is held.
    4xx replies and connections lost before the data were transmitted are retried with
    exponential backoff (``backoff_seconds * 2**attempt``) and a new connection; a connection
    lost after the data were transmitted leaves the message unresolved."""
    manifest_path = Path(manifest_path)
    ledger = Ledger(ledger_path)
    with ledger.exclusive(timeout=wait):
        if verify is not None:
            verify()
        manifest = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
        actions = plan(manifest, ledger, resend_changed, skip_changed)
        changed = [_label(a) for a in actions if a["action"] == "changed"]
        if changed:
            raise ChangedReportsError(
                f"{len(changed)} report(s) changed since they were sent: {', '.join(changed)}; nothing was "
                "sent. Give --resend-changed to send the new version or --skip-changed to leave them")
        summary = SendSummary()
        for action in actions:
            {"skip": summary.skipped, "skip-changed": summary.changed_skipped,
             "unresolved": summary.unresolved}.get(action["action"], []).append(_label(action))
        todo = [a for a in actions if a["action"] in ("send", "resend")]
        if todo:
            _transmit_all(todo, manifest_path.parent, ledger, settings, summary, sleep)
        return summary


def _transmit_all(todo: list[dict], outbox: Path, ledger: Ledger, settings: SmtpSettings,
                  summary: SendSummary, sleep) -> None:
    server = connect(settings)  # a failure here: nothing sent, the error says why
    interval = 60.0 / settings.rate_per_minute if settings.rate_per_minute > 0 else 0.0
    try:
        for index, action in enumerate(todo):
            if index and interval:
                sleep(interval)
            data = (outbox / action["message"]).read_bytes()
            label = _label(action)
            record = {"institution": action["institution"], "recipient": action["address"],
                      "attachment_sha256": action["attachment_sha256"],
                      "message_sha256": action["message_sha256"]}
            for attempt in range(settings.retries + 1):
                if server is None:
                    try:
                        server = connect(settings)
                    except DeliveryError as exc:
                        ledger.append({**record, "status": "deferred", "time": _now(), "attempt": attempt + 1,
                                       "reply": f"not sent: could not reconnect: {exc}"})
                        summary.deferred.extend([label] + [_label(a) for a in todo[index + 1:]])
                        return
                stamped, message_id, date = stamp(data, settings.sender)
                sent = {**record, "message_id": message_id, "date": date, "attempt": attempt + 1}
                ledger.append({**sent, "status": "sending", "time": _now(), "reply": ""})
                status, reply = _transaction(server, settings.sender, action["address"], stamped)
                if server.sock is None:   # closed by the server (421) or by smtplib after an error
                    server = None
                if status == "sent":
                    ledger.append({**sent, "status": "sent", "time": _now(), "reply": reply})
                    summary.sent.append(label)
                    break
                if status == "unresolved":
                    # The 'sending' record stays the latest: plan reports it for a person to resolve.
                    summary.unresolved.append(label)
                    break
                if status == "retry" and attempt < settings.retries:
                    ledger.append({**sent, "status": "deferred", "time": _now(), "reply": reply})
                    sleep(settings.backoff_seconds * 2**attempt)
                    continue
                final = "failed" if status == "failed" else "deferred"
                ledger.append({**sent, "status": final, "time": _now(), "reply": reply})
                (summary.failed if final == "failed" else summary.deferred).append(label)
                break
    finally:
        if server is not None:
            try:
                server.quit()
            except (smtplib.SMTPException, OSError):
                server.close()


def _transaction(server: smtplib.SMTP, sender: str, address: str, data: bytes) -> tuple[str, str]:
    """One SMTP transaction: ('sent' | 'retry' | 'failed' | 'unresolved', reply text)."""
    server.data_transmitted = False
    try:
        server.sendmail(sender, [address], data)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
    except smtplib.SMTPResponseException as exc:
        code, reply = exc.smtp_code, exc.smtp_error
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        server.close()
        if server.data_transmitted:
            return "unresolved", f"connection lost after the message was transmitted ({_reason(exc)})"
        return "retry", f"connection lost before the server accepted the message ({_reason(exc)})"
    else:
        return "sent", "250 accepted"
    text = f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    return ("retry" if 400 <= code < 500 else "failed"), text


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dpo_eval.delivery",
        description="Send the outbox by SMTP, show who would get what, or settle an unresolved send. "
                    "Exit codes: 0 done, 1 not all delivered, 2 invalid command/configuration, 3 stale "
                    "outbox, 4 changed reports, 5 another sender running, 6 cannot connect, 7 TLS failure, "
                    "8 CA file problem, 9 login refused.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--project", type=Path,
                        help="project directory (default: the one containing the current directory)")
    common.add_argument("--config", type=Path, help="default: config/config.yaml of the project")
    common.add_argument("--manifest", type=Path, help="default: results/outbox/manifest.csv of the project")
    common.add_argument("--ledger", type=Path, help="default: delivery.ledger of the config, in the project")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{plan,send,resolve}")
    for name, text in (("plan", "list per message and address: send, skip, changed, unresolved"),
                       ("send", "send what has not been delivered")):
        sub = commands.add_parser(name, parents=[common], help=text)
        changed = sub.add_mutually_exclusive_group()
        changed.add_argument("--resend-changed", action="store_true",
                             help="resend to institutions whose report changed since it was sent")
        changed.add_argument("--skip-changed", action="store_true",
                             help="leave institutions whose report changed since it was sent")
        if name == "send":
            sub.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                             help="wait this long for another running sender to finish (default: stop at once)")
    resolve = commands.add_parser("resolve", parents=[common], help="record the outcome of an unresolved send")
    resolve.add_argument("--institution", required=True)
    resolve.add_argument("--recipient", required=True, help="the address as in the plan")
    resolve.add_argument("--status", required=True, choices=["sent", "failed"],
                         help="sent: it arrived (never resend); failed: it did not (send again)")
    resolve.add_argument("--note", default="", help="how this was established (kept in the ledger)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        project = args.project.resolve() if args.project else find_project()
        config = load_delivery_config(project, args.config)
        ledger_path = args.ledger or in_project(project, config["delivery"]["ledger"])
        manifest_path = args.manifest or project / DEFAULT_MANIFEST
        if args.command == "resolve":
            Ledger(ledger_path).resolve(args.institution, args.recipient, args.status, args.note)
            print(f"recorded: {args.institution} <{args.recipient}> {args.status}")
            return 0
        if args.command == "plan":
            manifest = check_outbox_current(manifest_path, project, config)
            actions = plan(manifest, Ledger(ledger_path), args.resend_changed, args.skip_changed)
            for action in actions:
                # A school report with only the team's participation: worth a word in the e-mail.
                flag = ("  [no score figure of its own team or municipality]"
                        if action.get("own_figure") == "no" else "")
                print(f"{action['action']:<12} {action['institution']:<12} {action['address']:<40} "
                      f"{Path(action['attachment']).name} ({action['report']}, {action['language']}){flag}")
            return ChangedReportsError.exit_code if any(a["action"] == "changed" for a in actions) else 0
        settings = smtp_settings(config, project)
        summary = send_outbox(manifest_path, ledger_path, settings, args.resend_changed,
                              skip_changed=args.skip_changed, wait=args.wait,
                              verify=lambda: check_outbox_current(manifest_path, project, config))
    except DeliveryError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code
    print("\n".join(summary.lines()))
    return 1 if summary.failed or summary.deferred or summary.unresolved else 0


if __name__ == "__main__":
    sys.exit(main())

"""Sending the outbox: the plan per message and address (send, skip, changed, unresolved) and
the send loop, one SMTP transaction per address under the ledger's lock, with retries."""

from __future__ import annotations

import smtplib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from dpo_eval.delivery.errors import ChangedReportsError, DeliveryError
from dpo_eval.delivery.ledger import Ledger, now
from dpo_eval.delivery.message import stamp
from dpo_eval.delivery.smtp import SmtpSettings, connect, transaction


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
                        ledger.append({**record, "status": "deferred", "time": now(), "attempt": attempt + 1,
                                       "reply": f"not sent: could not reconnect: {exc}"})
                        summary.deferred.extend([label] + [_label(a) for a in todo[index + 1:]])
                        return
                stamped, message_id, date = stamp(data, settings.sender)
                sent = {**record, "message_id": message_id, "date": date, "attempt": attempt + 1}
                ledger.append({**sent, "status": "sending", "time": now(), "reply": ""})
                status, reply = transaction(server, settings.sender, action["address"], stamped)
                if server.sock is None:   # closed by the server (421) or by smtplib after an error
                    server = None
                if status == "sent":
                    ledger.append({**sent, "status": "sent", "time": now(), "reply": reply})
                    summary.sent.append(label)
                    break
                if status == "unresolved":
                    # The 'sending' record stays the latest: plan reports it for a person to resolve.
                    summary.unresolved.append(label)
                    break
                if status == "retry" and attempt < settings.retries:
                    ledger.append({**sent, "status": "deferred", "time": now(), "reply": reply})
                    sleep(settings.backoff_seconds * 2**attempt)
                    continue
                final = "failed" if status == "failed" else "deferred"
                ledger.append({**sent, "status": final, "time": now(), "reply": reply})
                (summary.failed if final == "failed" else summary.deferred).append(label)
                break
    finally:
        if server is not None:
            try:
                server.quit()
            except (smtplib.SMTPException, OSError):
                server.close()



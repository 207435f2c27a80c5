"""Delivery against a real SMTP server on 127.0.0.1 (aiosmtpd, STARTTLS with a certificate
made here): one message per institution, never twice, never to the wrong institution."""

import asyncio
import csv
import datetime
import io
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conftest import SNAKEMAKE, run_snakemake
from dpo_eval.delivery.cli import main
from dpo_eval.delivery.errors import (ChangedReportsError, DeliveryError, SenderBusyError, SmtpTlsError,
                                      StaleOutboxError)
from dpo_eval.delivery.ledger import Ledger
from dpo_eval.delivery.message import transliterate
from dpo_eval.delivery.outbox import write_outbox
from dpo_eval.core.registry import load_recipients
from dpo_eval.delivery.sending import plan, send_outbox
from dpo_eval.delivery.smtp import SmtpSettings
from dpo_eval.core.readers import read_export

USER, PASSWORD = "dpo", "s3cret-for-tests"
pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Recorder:
    """Accepts messages; optionally answers 451 (or another reply) to the n-th DATA once."""

    def __init__(self, fail_once_at: int | None = None, reply: str = "451 4.3.0 Temporary failure, try again later"):
        self.messages, self.data_count, self.fail_once_at, self.reply = [], 0, fail_once_at, reply

    async def handle_DATA(self, server, session, envelope):
        self.data_count += 1
        if self.fail_once_at is not None and self.data_count == self.fail_once_at:
            return self.reply
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(handler, certificate, tls=True, accept_login=True):
    cert_path, key_path = certificate
    context = None
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_path, key_path)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = accept_login and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=tls, auth_required=True, auth_require_tls=tls,
                            authenticator=authenticator)
    controller.start()
    return controller


def settings(controller, certificate, **changes) -> SmtpSettings:
    values = dict(host="127.0.0.1", port=controller.port, security="starttls", user=USER, password=PASSWORD,
                  sender="evaluation@dpo-eval.example.org", cafile=str(certificate[0]), allow_plain_local=False,
                  rate_per_minute=0, retries=0, backoff_seconds=0, timeout=10)
    values.update(changes)
    return SmtpSettings(**values)


@pytest.fixture
def outbox(demo_run):
    return demo_run / "results" / "outbox" / "manifest.csv"


def by_institution(messages):
    result = {}
    for recipients, content in messages:
        parsed = message_from_bytes(content, policy=policy.default)
        result.setdefault(parsed["X-DPO-Eval-Institution"], []).append((recipients, parsed))
    return result


def test_every_institution_gets_exactly_its_own_report_once(demo_run, outbox, certificate, tmp_path):
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        summary = send_outbox(outbox, tmp_path / "ledger.jsonl", settings(controller, certificate))
        recipients = load_recipients(demo_run / "config" / "recipients.csv")
        received = by_institution(recorder.messages)
        assert len(summary.sent) == sum(len(r.addresses) for r in recipients)
        assert set(received) == {r.institution for r in recipients}
        for recipient in recipients:
            messages = received[recipient.institution]
            assert len(messages) == len(recipient.addresses)
            for envelope_to, parsed in messages:
                assert envelope_to == [a for a in recipient.addresses if a in envelope_to]
                assert parsed["To"] == ", ".join(recipient.addresses)
                attachment = next(parsed.iter_attachments()).get_content()
                expected = (demo_run / "results" / "reports" / (f"evaluation.{recipient.language}.pdf"
                            if recipient.report == "evaluation" else f"institutions/{recipient.institution}.pdf"))
                assert attachment == expected.read_bytes()
        assert {r.institution for r in recipients if r.report == "evaluation"} == {"UNI-AMGPGU", "IRO-KHK"}
        # A second run sends nothing.
        again = send_outbox(outbox, tmp_path / "ledger.jsonl", settings(controller, certificate))
        assert again.sent == [] and len(recorder.messages) == len(summary.sent)
    finally:
        controller.stop()


def test_temporary_failure_is_deferred_then_delivered_without_duplicates(outbox, certificate, tmp_path):
    recorder = Recorder(fail_once_at=3)
    controller = start(recorder, certificate)
    ledger = tmp_path / "ledger.jsonl"
    try:
        first = send_outbox(outbox, ledger, settings(controller, certificate))
        assert len(first.deferred) == 1 and first.failed == []
        total = len(pd.read_csv(outbox))
        assert len(recorder.messages) == total - 1
        second = send_outbox(outbox, ledger, settings(controller, certificate))
        assert second.sent == first.deferred
        counts = pd.Series([m[1]["X-DPO-Eval-Institution"] for m in
                            [(r, message_from_bytes(c, policy=policy.default)) for r, c in recorder.messages]]).value_counts()
        assert len(counts) == total and (counts == 1).all()
    finally:
        controller.stop()


def test_retry_within_a_run_after_451(outbox, certificate, tmp_path):
    recorder = Recorder(fail_once_at=2)
    controller = start(recorder, certificate)
    try:
        summary = send_outbox(outbox, tmp_path / "ledger.jsonl", settings(controller, certificate, retries=2),
                              sleep=lambda seconds: None)
        assert summary.deferred == [] and len(summary.sent) == len(pd.read_csv(outbox))
        statuses = [r["status"] for r in Ledger(tmp_path / "ledger.jsonl").records()]
        assert statuses.count("deferred") == 1
    finally:
        controller.stop()


def test_permanent_failure_is_recorded_and_not_retried(outbox, certificate, tmp_path):
    recorder = Recorder(fail_once_at=2, reply="550 5.1.1 Mailbox unavailable")
    controller = start(recorder, certificate)
    try:
        summary = send_outbox(outbox, tmp_path / "ledger.jsonl", settings(controller, certificate, retries=3),
                              sleep=lambda seconds: None)
        assert len(summary.failed) == 1 and summary.deferred == []
        failed = [r for r in Ledger(tmp_path / "ledger.jsonl").records() if r["status"] == "failed"]
        assert len(failed) == 1 and failed[0]["reply"].startswith("550")
        assert recorder.data_count == len(pd.read_csv(outbox))
    finally:
        controller.stop()


def test_refused_login_sends_nothing_and_leaves_the_ledger(outbox, certificate, tmp_path):
    controller = start(Recorder(), certificate, accept_login=False)
    try:
        with pytest.raises(DeliveryError, match="refused the login of 'dpo'.*nothing was sent"):
            send_outbox(outbox, tmp_path / "ledger.jsonl", settings(controller, certificate))
        assert not (tmp_path / "ledger.jsonl").exists()
    finally:
        controller.stop()


def test_server_without_tls_is_refused(outbox, certificate, tmp_path):
    recorder = Recorder()
    controller = start(recorder, certificate, tls=False)
    try:
        with pytest.raises(DeliveryError, match="offers no STARTTLS; nothing was sent"):
            send_outbox(outbox, tmp_path / "ledger.jsonl", settings(controller, certificate))
        with pytest.raises(DeliveryError, match="refusing to send a password over an unencrypted connection"):
            send_outbox(outbox, tmp_path / "ledger.jsonl", settings(controller, certificate, security="none"))
        assert recorder.messages == [] and not (tmp_path / "ledger.jsonl").exists()
    finally:
        controller.stop()


def test_certificate_is_verified(outbox, certificate, tmp_path):
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        with pytest.raises(SmtpTlsError, match="certificate of 127.0.0.1:.* is not trusted"):
            send_outbox(outbox, tmp_path / "ledger.jsonl", settings(controller, certificate, cafile=None))
        assert recorder.messages == [] and not (tmp_path / "ledger.jsonl").exists()
    finally:
        controller.stop()


def test_crash_between_ledger_writes_is_reported_not_guessed(outbox, tmp_path):
    manifest = pd.read_csv(outbox, dtype=str, keep_default_na=False)
    first = manifest.iloc[0]
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append({"institution": first["institution"], "recipient": first["emails"].split(";")[0],
                   "attachment_sha256": first["attachment_sha256"], "message_id": "<x@y>",
                   "status": "sending", "time": "2026-04-01T09:00:00+00:00", "reply": "", "attempt": 1})
    actions = plan(manifest, ledger, resend_changed=False)
    assert [a["action"] for a in actions if a["institution"] == first["institution"]] == ["unresolved"]
    ledger.resolve(first["institution"], first["emails"].split(";")[0], "sent", "confirmed by phone")
    assert [a["action"] for a in plan(manifest, ledger, False) if a["institution"] == first["institution"]] == ["skip"]


def test_changed_report_is_resent_only_when_asked(outbox, tmp_path):
    manifest = pd.read_csv(outbox, dtype=str, keep_default_na=False)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for row in manifest.itertuples():
        ledger.append({"institution": row.institution, "recipient": row.emails, "attachment_sha256": "old",
                       "message_id": "<m>", "status": "sent", "time": "t", "reply": "250", "attempt": 1})
    assert {a["action"] for a in plan(manifest, ledger, resend_changed=False)} == {"changed"}
    assert {a["action"] for a in plan(manifest, ledger, resend_changed=True)} == {"resend"}


def test_messages_hold_no_participant_key_or_personal_data(demo_run):
    keys = set(pd.read_csv(demo_run / "results" / "clean" / "respondents.csv")["participant_key"])
    raw = demo_run / "data" / "raw"
    frame = read_export(raw / "pre_entry_google.csv").frame
    personal = set(frame["Адрес электронной почты"]) | set(frame["Фамилия, имя, отчество"]) | set(frame["Контактный телефон"])
    for path in (demo_run / "results" / "outbox").glob("*.eml"):
        parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
        text = "\n".join(f"{k}: {v}" for k, v in parsed.items()) + parsed.get_body(("plain",)).get_content()
        assert not re.search(r"\bP[0-9a-f]{16}\b", text)
        assert not any(value in text for value in personal | keys)


# --------------------------------------------------------------------------- issue 12: hardening



class Disconnecting(Recorder):
    """Answers the n-th DATA with ``reply`` and then closes the connection (``reply=None``: closes
    without any reply, after the message data arrived)."""

    async def handle_DATA(self, server, session, envelope):
        self.data_count += 1
        if self.data_count == self.fail_once_at:
            asyncio.get_running_loop().call_soon(server.transport.close)
            if self.reply is None:
                await asyncio.sleep(0.5)   # the transport is closed before a reply could be sent
            return self.reply or "250 2.0.0 OK"
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 OK"


def smtp_env(controller, certificate, **changes) -> dict:
    env = {**os.environ, "DPO_EVAL_SMTP_HOST": "127.0.0.1", "DPO_EVAL_SMTP_PORT": str(controller.port),
           "DPO_EVAL_SMTP_USER": USER, "DPO_EVAL_SMTP_PASSWORD": PASSWORD,
           "DPO_EVAL_SMTP_CAFILE": str(certificate[0])}
    env.update(changes)
    return env


@pytest.fixture
def project(demo_run, tmp_path):
    """A copy of the demo run (results, Snakemake metadata and all) for tests that change it;
    sending without pauses between messages."""
    copy = tmp_path / "project"
    # Without the project's ledger folder (not the package of the same name under src/).
    shutil.copytree(demo_run, copy, symlinks=True,
                    ignore=lambda folder, names: ["delivery"] if Path(folder) == demo_run else [])
    path = copy / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["delivery"]["smtp"].update(rate_per_minute=0, retries=0, backoff_seconds=0)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return copy


def cli(project, *args, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpo_eval.delivery", *args], cwd=cwd or project,
                          capture_output=True, text=True, env=env or dict(os.environ), timeout=300)


def addresses(outbox_manifest) -> list[str]:
    manifest = pd.read_csv(outbox_manifest, dtype=str, keep_default_na=False)
    return [a for emails in manifest["emails"] for a in emails.split(";")]


def test_two_senders_at_once_deliver_each_message_once(project, certificate):
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        env = smtp_env(controller, certificate)
        senders = [subprocess.Popen([sys.executable, "-m", "dpo_eval.delivery", "send", "--wait", "120"],
                                    cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for _ in range(2)]
        outputs = [sender.communicate(timeout=300) for sender in senders]
        assert [sender.returncode for sender in senders] == [0, 0], outputs
        expected = addresses(project / "results" / "outbox" / "manifest.csv")
        received = sorted(r for recipients, _ in recorder.messages for r in recipients)
        assert received == sorted(expected)
        assert sorted(int(out.splitlines()[0].split(": ")[1]) for out, _ in outputs) == [0, len(expected)]
        ledger = Ledger(project / "delivery" / "ledger.jsonl")
        assert sum(r["status"] == "sent" for r in ledger.records()) == len(expected)
    finally:
        controller.stop()


def test_a_second_sender_stops_with_a_clear_message_while_the_lock_is_held(project, certificate):
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        with Ledger(project / "delivery" / "ledger.jsonl").exclusive():
            result = cli(project, "send", env=smtp_env(controller, certificate))
        assert result.returncode == SenderBusyError.exit_code
        assert result.stderr.startswith("ERROR: another delivery is running (pid ")
        assert recorder.messages == []
    finally:
        controller.stop()


def test_stale_outbox_after_a_failed_rerun_is_refused(project, certificate):
    raw = project / "data" / "raw" / "pre_entry_google.csv"
    raw.write_text("", encoding="utf-8")
    rerun = run_snakemake(project, "--cores", "1", check=False)
    assert rerun.returncode != 0
    assert (project / "results" / "outbox" / "manifest.csv").exists()  # the previous run's outbox
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        env = smtp_env(controller, certificate)
        for command in ("send", "plan"):
            result = cli(project, command, env=env)
            assert result.returncode == StaleOutboxError.exit_code, result.stderr
            assert "the outbox is not the product of the current inputs" in result.stderr
            assert "data/raw/pre_entry_google.csv" in result.stderr and "nothing was sent" in result.stderr
        assert recorder.messages == [] and recorder.data_count == 0
        assert not (project / "delivery" / "ledger.jsonl").exists()
    finally:
        controller.stop()


def test_resolve_requires_a_status(project, capsys):
    ledger = project / "delivery" / "ledger.jsonl"
    ledger.parent.mkdir()
    record = {"institution": "SCH001", "recipient": "director@sch001.example.org", "attachment_sha256": "x",
              "message_id": "<m>", "status": "sending", "time": "t", "reply": "", "attempt": 1}
    ledger.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        main(["resolve", "--project", str(project), "--institution", "SCH001",
              "--recipient", "director@sch001.example.org"])
    assert stop.value.code == 2 and "--status" in capsys.readouterr().err
    assert Ledger(ledger).records() == [record]
    assert main(["resolve", "--project", str(project), "--institution", "SCH001",
                 "--recipient", "director@sch001.example.org", "--status", "sent", "--note", "phoned"]) == 0
    assert Ledger(ledger).records()[-1]["status"] == "sent"


def test_plan_is_the_same_from_any_directory(project, tmp_path):
    first = pd.read_csv(project / "results" / "outbox" / "manifest.csv", dtype=str).iloc[0]
    ledger = project / "delivery" / "ledger.jsonl"
    ledger.parent.mkdir()
    ledger.write_text(json.dumps({"institution": first["institution"], "recipient": first["emails"],
                                  "attachment_sha256": first["attachment_sha256"], "status": "sent",
                                  "time": "t", "reply": "250", "attempt": 1}) + "\n", encoding="utf-8")
    at_root = cli(project, "plan")
    in_results = cli(project, "plan", cwd=project / "results")
    elsewhere = cli(project, "plan", "--project", str(project), cwd=tmp_path)
    assert at_root.returncode == in_results.returncode == elsewhere.returncode == 0, at_root.stderr
    assert at_root.stdout == in_results.stdout == elsewhere.stdout
    assert at_root.stdout.splitlines()[0].split()[:2] == ["skip", first["institution"]]
    assert at_root.stdout.count("\nsend ") == len(addresses(project / "results" / "outbox" / "manifest.csv")) - 1
    outside = cli(project, "plan", cwd=tmp_path)
    assert outside.returncode == 2 and "is not inside a dpo_eval project" in outside.stderr


def test_plan_flags_school_reports_without_a_score_figure_of_their_own(project):
    """The school reports' index says which reports show scores of neither the team nor its
    municipality (too few respondents around it); the plan marks exactly their messages."""
    index = pd.read_csv(project / "results" / "reports" / "institutions" / "index.csv")
    without = set(index.loc[~index["scores_figure"].astype(bool), "institution"])
    assert without, "the demo study has schools whose reports show only the cohort's scores"
    result = cli(project, "plan")
    assert result.returncode == 0, result.stderr
    flagged = {line.split()[1] for line in result.stdout.splitlines()
               if line.endswith("[no score figure of its own team or municipality]")}
    assert flagged == without


def test_421_with_disconnect_is_deferred_and_delivered_on_the_next_run(outbox, certificate, tmp_path):
    recorder = Disconnecting(fail_once_at=3, reply="421 4.3.2 Service shutting down, closing connection")
    controller = start(recorder, certificate)
    ledger = tmp_path / "ledger.jsonl"
    try:
        first = send_outbox(outbox, ledger, settings(controller, certificate))
        assert len(first.deferred) == 1 and first.unresolved == [] and first.failed == []
        total = len(addresses(outbox))
        assert len(first.sent) == total - 1 == len(recorder.messages)   # reconnected after the 421
        assert Ledger(ledger).state()[tuple(first.deferred[0][:-1].split(" <"))]["reply"].startswith("421")
        second = send_outbox(outbox, ledger, settings(controller, certificate))
        assert second.sent == first.deferred
        received = sorted(r for recipients, _ in recorder.messages for r in recipients)
        assert received == sorted(addresses(outbox))
    finally:
        controller.stop()


def test_connection_lost_after_the_data_is_unresolved_not_resent(outbox, certificate, tmp_path):
    recorder = Disconnecting(fail_once_at=2, reply=None)
    controller = start(recorder, certificate)
    ledger = tmp_path / "ledger.jsonl"
    try:
        first = send_outbox(outbox, ledger, settings(controller, certificate, retries=2), sleep=lambda s: None)
        assert len(first.unresolved) == 1 and first.deferred == []
        assert len(first.sent) == len(addresses(outbox)) - 1
        second = send_outbox(outbox, ledger, settings(controller, certificate))
        assert second.sent == [] and second.unresolved == first.unresolved
    finally:
        controller.stop()


@pytest.mark.parametrize("case, code, message", [
    ("untrusted", 7, "ERROR: the TLS certificate of 127.0.0.1:{port} is not trusted"),
    ("refused", 6, "ERROR: cannot connect to the SMTP server 127.0.0.1:{closed} ("),
    ("no_cafile", 8, "ERROR: the CA file {missing} (delivery.smtp.cafile or DPO_EVAL_SMTP_CAFILE) does not exist"),
])
def test_connection_problems_are_one_line_with_their_own_exit_code(project, certificate, tmp_path, case,
                                                                    code, message):
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        closed, missing = free_port(), tmp_path / "missing-ca.pem"
        env = {"untrusted": smtp_env(controller, certificate, DPO_EVAL_SMTP_CAFILE=""),
               "refused": smtp_env(controller, certificate, DPO_EVAL_SMTP_PORT=str(closed)),
               "no_cafile": smtp_env(controller, certificate, DPO_EVAL_SMTP_CAFILE=str(missing))}[case]
        result = cli(project, "send", env=env)
        assert result.returncode == code
        assert result.stderr.startswith(message.format(port=controller.port, closed=closed, missing=missing))
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert recorder.messages == [] and not (project / "delivery" / "ledger.jsonl").exists()
    finally:
        controller.stop()


def test_invalid_configuration_is_reported_like_the_pipeline(project):
    path = project / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["delivery"]["smtp"]["port"] = "587"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    for command in ("plan", "send"):
        result = cli(project, command)
        assert result.returncode == 2 and "key 'delivery.smtp.port'" in result.stderr


def test_changed_reports_stop_the_send_unless_a_choice_is_given(project, certificate):
    manifest = pd.read_csv(project / "results" / "outbox" / "manifest.csv", dtype=str, keep_default_na=False)
    ledger = Ledger(project / "delivery" / "ledger.jsonl")
    first = manifest.iloc[0]
    for row in manifest.itertuples():
        for address in row.emails.split(";"):
            ledger.append({"institution": row.institution, "recipient": address, "status": "sent",
                           "attachment_sha256": "an-older-report" if row.Index == 0 else row.attachment_sha256,
                           "time": "t", "reply": "250", "attempt": 1})
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        env = smtp_env(controller, certificate)
        refused = cli(project, "send", env=env)
        assert refused.returncode == ChangedReportsError.exit_code and first["institution"] in refused.stderr
        assert cli(project, "plan").returncode == ChangedReportsError.exit_code
        skipped = cli(project, "send", "--skip-changed", env=env)
        assert skipped.returncode == 0 and recorder.messages == []
        resent = cli(project, "send", "--resend-changed", env=env)
        assert resent.returncode == 0 and [r for r, _ in recorder.messages] == [first["emails"].split(";")]
    finally:
        controller.stop()


def test_sent_message_has_send_date_fresh_message_id_and_school_names(project, certificate):
    sender_name = yaml.safe_load((project / "config" / "config.yaml").read_text(encoding="utf-8"))["delivery"]
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        assert cli(project, "send", env=smtp_env(controller, certificate)).returncode == 0
        after = datetime.datetime.now(datetime.timezone.utc)
    finally:
        controller.stop()
    ledger = {r["recipient"]: r for r in Ledger(project / "delivery" / "ledger.jsonl").records()
              if r["status"] == "sent"}
    ids = set()
    for recipients, content in recorder.messages:
        parsed = message_from_bytes(content, policy=policy.default)
        assert before <= parsedate_to_datetime(parsed["Date"]) <= after
        assert parsed["Message-ID"] == ledger[recipients[0]]["message_id"] and parsed["Date"] == ledger[recipients[0]]["date"]
        ids.add(parsed["Message-ID"])
        sender = parsed["From"].addresses[0]
        assert (sender.display_name, sender.addr_spec) == (sender_name["sender_name"], sender_name["sender"])
    assert len(ids) == len(recorder.messages)
    school = message_from_bytes((project / "results" / "outbox" / "SCH001.eml").read_bytes(), policy=policy.default)
    assert school["Subject"] == "Отчёт об оценке программы ДПО для управленческих команд: МБОУ СОШ № 3 (г. Хабаровск)"
    assert next(school.iter_attachments()).get_filename() == "MBOU_SOSH_No_3_g_Khabarovsk.pdf"
    assert "Date" not in school and "Message-ID" not in school   # the outbox itself stays deterministic


def test_display_names_round_trip_through_standard_parsers(demo_run, tmp_path):
    from dpo_eval.delivery.message import encode_display_name

    names = ["DPO evaluation / Оценка программы ДПО", "МБОУ СОШ № 3 (г. Хабаровск)", "Plain Name",
             "Амурский гуманитарно-педагогический государственный университет", 'Кавычки "и" запятая, тоже']
    for name in names:
        raw = f"From: {encode_display_name(name, 'a@example.org')}\r\nSubject: x\r\n\r\nbody\r\n".encode("ascii")
        parsed = message_from_bytes(raw, policy=policy.default)["From"].addresses[0]
        assert (parsed.display_name, parsed.addr_spec) == (name, "a@example.org")
    assert transliterate("Щука съела ЩУКУ, ёж") == "Shchuka sieela SHCHUKU, ezh"


def test_a_recipient_with_several_addresses_gets_one_message_per_address(demo_run, certificate, tmp_path):
    config = yaml.safe_load((demo_run / "config" / "config.yaml").read_text(encoding="utf-8"))
    recipients = pd.read_csv(demo_run / "config" / "recipients.csv", dtype=str, keep_default_na=False)
    several = ["director@sch001.example.org", "deputy@sch001.example.org", "office@sch001.example.org"]
    recipients.loc[recipients["institution"] == "SCH001", "emails"] = ";".join(several)
    recipients.to_csv(tmp_path / "recipients.csv", index=False)
    outbox_dir = tmp_path / "outbox"
    write_outbox(config, tmp_path / "recipients.csv", demo_run / "data" / "raw" / "institutions.csv",
                 demo_run / "results" / "reports", demo_run / "reports" / "templates" / "email.txt",
                 demo_run / "reports" / "i18n", outbox_dir, project=demo_run)
    recorder = Recorder(fail_once_at=4)   # UNI, IRO, then the second address of SCH001: deferred once
    controller = start(recorder, certificate)
    ledger = tmp_path / "ledger.jsonl"
    try:
        first = send_outbox(outbox_dir / "manifest.csv", ledger, settings(controller, certificate))
        assert first.deferred == [f"SCH001 <{several[1]}>"]
        second = send_outbox(outbox_dir / "manifest.csv", ledger, settings(controller, certificate))
        assert second.sent == [f"SCH001 <{several[1]}>"]
    finally:
        controller.stop()
    to_school = [(r, message_from_bytes(c, policy=policy.default)) for r, c in recorder.messages
                 if message_from_bytes(c, policy=policy.default)["X-DPO-Eval-Institution"] == "SCH001"]
    assert sorted(r[0] for r, _ in to_school) == sorted(several)
    assert all([a.addr_spec for a in m["To"].addresses] == several for _, m in to_school)


def test_snakemake_send_runs_with_snakemakes_interpreter_without_an_activated_venv(project, certificate):
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        env = smtp_env(controller, certificate)
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if Path(p).resolve() != Path(venv_bin).resolve())
        env.pop("VIRTUAL_ENV", None)
        env.pop("PYTHONPATH", None)
        # The copy lies elsewhere, so the absolute paths of the code inputs differ: only
        # modification times decide here, as they would in the original project.
        result = subprocess.run([SNAKEMAKE, "--cores", "1", "--rerun-triggers", "mtime", "--", "send"],
                                cwd=project, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "ModuleNotFoundError" not in result.stderr
        assert sorted(r for recipients, _ in recorder.messages for r in recipients) == sorted(
            addresses(project / "results" / "outbox" / "manifest.csv"))
        assert (project / "logs" / "send.log").read_text(encoding="utf-8").startswith("sent: ")
    finally:
        controller.stop()


def test_recipient_with_several_addresses_gets_one_copy_at_each(certificate, tmp_path):
    """A school with two addresses: one message, addressed to both, delivered once to each
    address; a 451 for the second address is retried later for that address only."""
    from dpo_eval.core.settings import OutboxSettings
    from dpo_eval.steps.delivery_rules import outbox as write_outbox_step

    from conftest import REPO

    addresses = ["director@sch900.example.org", "deputy@sch900.example.org"]
    (tmp_path / "registry.csv").write_text("id,name,municipality,type,settlement,language,email\n"
                                           "SCH900,Школа 900,г. Хабаровск,school,urban,ru,\n", encoding="utf-8")
    (tmp_path / "recipients.csv").write_text("institution,name,emails,language,report\n"
                                             f"SCH900,Школа 900,{';'.join(addresses)},ru,institution\n",
                                             encoding="utf-8")
    (tmp_path / "reports" / "institutions").mkdir(parents=True)
    (tmp_path / "reports" / "institutions" / "SCH900.pdf").write_bytes(b"%PDF-1.7 test report")
    write_outbox_step(OutboxSettings("evaluation@dpo-eval.example.org", "DPO evaluation", "2026-04-01"),
                      tmp_path / "recipients.csv", tmp_path / "registry.csv", tmp_path / "reports",
                      REPO / "reports" / "templates" / "email.txt", REPO / "reports" / "i18n",
                      tmp_path / "outbox")
    manifest = tmp_path / "outbox" / "manifest.csv"
    assert pd.read_csv(manifest)["emails"].tolist() == [";".join(addresses)]

    recorder = Recorder(fail_once_at=2)
    controller = start(recorder, certificate)
    ledger = tmp_path / "ledger.jsonl"
    try:
        first = send_outbox(manifest, ledger, settings(controller, certificate))
        assert [rcpt for rcpt, _ in recorder.messages] == [[addresses[0]]]
        assert len(first.deferred) == 1 and addresses[1] in first.deferred[0]
        second = send_outbox(manifest, ledger, settings(controller, certificate))
        assert [rcpt for rcpt, _ in recorder.messages] == [[addresses[0]], [addresses[1]]]
        assert len(second.sent) == 1 and addresses[1] in second.sent[0]
        third = send_outbox(manifest, ledger, settings(controller, certificate))
        assert third.sent == [] and len(recorder.messages) == 2
    finally:
        controller.stop()
    for _, content in recorder.messages:
        message = message_from_bytes(content, policy=policy.default)
        assert [a.addr_spec for a in message["To"].addresses] == addresses
        assert message["X-DPO-Eval-Institution"] == "SCH900"


def excel_csv(source: Path, target: Path) -> None:
    """``source`` (UTF-8, ',') saved as Excel saves a CSV in Russian Windows: cp1251 and ';'."""
    rows = list(csv.reader(io.StringIO(source.read_text(encoding="utf-8"), newline="")))
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(rows)
    target.write_bytes(buffer.getvalue().encode("cp1251"))


def test_outbox_and_delivery_on_a_registry_and_recipients_saved_by_excel(project, certificate):
    """The registry and the recipients file in cp1251 with ';': the DAG builds, the outbox step
    writes the same messages as from the UTF-8 files, and the sender accepts and sends them."""
    from dpo_eval.delivery.outbox import outbox_config_digest
    from dpo_eval.core.settings import OutboxSettings
    from dpo_eval.steps.delivery_rules import outbox as outbox_step

    outbox_dir = project / "results" / "outbox"
    before = {p.name: p.read_bytes() for p in outbox_dir.glob("*.eml")}
    registry, recipients = project / "data" / "raw" / "institutions.csv", project / "config" / "recipients.csv"
    for path in (registry, recipients):
        excel_csv(path, path)
        assert path.read_bytes().decode("cp1251").splitlines()[0].count(";") >= 4
    dry = run_snakemake(project, "-n", "--cores", "1", check=False)
    assert dry.returncode == 0, dry.stderr[-3000:]
    config = yaml.safe_load((project / "config" / "config.yaml").read_text(encoding="utf-8"))
    provenance = pd.read_csv(outbox_dir / "inputs.csv", dtype=str)["path"]
    provenance = [project / p for p in provenance if p != "(configuration)"]
    outbox_step(OutboxSettings.from_config(config), recipients, registry, project / "results" / "reports",
                project / "reports" / "templates" / "email.txt", project / "reports" / "i18n", outbox_dir,
                provenance=provenance, configuration=outbox_config_digest(config))
    assert {p.name: p.read_bytes() for p in outbox_dir.glob("*.eml")} == before
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        result = cli(project, "send", env=smtp_env(controller, certificate))
        assert result.returncode == 0, result.stderr
    finally:
        controller.stop()
    assert sorted(r for rcpts, _ in recorder.messages for r in rcpts) == sorted(addresses(outbox_dir / "manifest.csv"))


def test_snakemake_send_never_rebuilds_and_refuses_a_stale_outbox(project, certificate):
    """An input changed since the last run: `snakemake send` runs no other rule (no ingest
    without the secret that would fail and delete its outputs), sends nothing and exits 3."""
    clean = {p: p.read_bytes() for p in (project / "results" / "clean").glob("*.csv")}
    raw = project / "data" / "raw" / "pre_entry_google.csv"
    raw.write_bytes(raw.read_bytes() + b"\n")
    recorder = Recorder()
    controller = start(recorder, certificate)
    try:
        env = smtp_env(controller, certificate)
        env.pop("DPO_EVAL_SECRET", None)
        result = subprocess.run([SNAKEMAKE, "--cores", "1", "--rerun-triggers", "mtime", "--", "send"],
                                cwd=project, env=env, capture_output=True, text=True, timeout=600)
    finally:
        controller.stop()
    console = result.stdout + result.stderr
    assert result.returncode == StaleOutboxError.exit_code, console[-3000:]
    assert "rule ingest" not in console and "localrule ingest" not in console
    assert "the outbox is not the product of the current inputs" in console
    assert "data/raw/pre_entry_google.csv" in console
    assert recorder.messages == [] and recorder.data_count == 0
    assert {p: p.read_bytes() for p in (project / "results" / "clean").glob("*.csv")} == clean
    assert not (project / "logs" / "send.status").exists()   # read by the exit handler, then removed


def test_a_failed_rebuild_of_the_outbox_keeps_the_previous_one(project, certificate):
    """The outbox job fails (a broken template): Snakemake restores the previous outbox, which
    is refused while the template differs and sendable again once it is restored."""
    outbox_dir = project / "results" / "outbox"
    before = {p.name: p.read_bytes() for p in outbox_dir.iterdir()}
    template = project / "reports" / "templates" / "email.txt"
    good = template.read_bytes()
    template.write_bytes(good + b"{{ unclosed\n")
    rebuild = run_snakemake(project, "--cores", "1", "--rerun-triggers", "mtime", "--", "results/outbox",
                            check=False)
    console = rebuild.stdout + rebuild.stderr
    assert rebuild.returncode != 0 and "rule outbox" in console, console[-3000:]
    assert {p.name: p.read_bytes() for p in outbox_dir.iterdir()} == before
    stale = cli(project, "plan")
    assert stale.returncode == StaleOutboxError.exit_code and "reports/templates/email.txt" in stale.stderr
    template.write_bytes(good)
    again = cli(project, "plan")
    assert again.returncode == 0, again.stderr

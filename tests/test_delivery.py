"""Delivery against a real SMTP server on 127.0.0.1 (aiosmtpd, STARTTLS with a certificate
made here): one message per institution, never twice, never to the wrong institution."""

import datetime
import ipaddress
import re
import socket
import ssl
from email import message_from_bytes, policy

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from dpo_eval.delivery import DeliveryError, Ledger, SmtpSettings, load_recipients, plan, send_outbox
from dpo_eval.readers import read_export

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
    controller = start(Recorder(), certificate)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            send_outbox(outbox, tmp_path / "ledger.jsonl", settings(controller, certificate, cafile=None))
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


def test_recipient_with_several_addresses_gets_one_copy_at_each(certificate, tmp_path):
    """A school with two addresses: one message, addressed to both, delivered once to each
    address; a 451 for the second address is retried later for that address only."""
    from dpo_eval.settings import OutboxSettings
    from dpo_eval.steps.delivery import outbox as write_outbox_step

    from conftest import REPO

    addresses = ["director@sch900.example.org", "deputy@sch900.example.org"]
    (tmp_path / "registry.csv").write_text("id,name,type,language\nSCH900,Школа 900,school,ru\n",
                                           encoding="utf-8")
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

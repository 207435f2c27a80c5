"""The rules of delivery, unit by unit and in milliseconds: no pipeline run, no SMTP server (the
end-to-end checks against a real server are in test_delivery.py)."""

import hashlib
import json
import smtplib
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from dpo_eval.core.config import config_digest
from dpo_eval.delivery.errors import CaFileError, DeliveryError, SenderBusyError, StaleOutboxError
from dpo_eval.delivery.ledger import Ledger
from dpo_eval.delivery.message import encode_display_name, safe_filename, stamp, transliterate
from dpo_eval.delivery.outbox import check_outbox_current, outbox_config_digest, write_outbox
from dpo_eval.delivery.sending import plan
from dpo_eval.delivery.smtp import PASSWORD_ENV, smtp_settings, tls_context, transaction

CONFIG = {"study": {"report_date": "2026-04-01", "title": "Оценка"}, "reproduce": False,
          "delivery": {"sender": "evaluation@dpo-eval.example.org", "sender_name": "Оценка программы ДПО",
                       "recipients": "config/recipients.csv", "ledger": "delivery/ledger.jsonl",
                       "smtp": {"host": "smtp.example.org", "port": 587, "security": "starttls"}}}


# --------------------------------------------------------------------------- names


def test_transliteration_follows_gost_52535():
    # ICAO/GOST R 52535.1-2006: х kh, ц ts, щ shch, ъ ie, ю iu, я ia, ь dropped, ё e.
    assert transliterate("Хабаровск") == "Khabarovsk"
    assert transliterate("Щука съела ЩУКУ, ёж") == "Shchuka sieela SHCHUKU, ezh"
    assert transliterate("Юный Яков, мальчик") == "Iunyi Iakov, malchik"
    assert transliterate("СОШ № 3") == "SOSH No 3"


def test_attachment_file_names_are_safe_ascii():
    assert safe_filename("МБОУ СОШ № 3 (г. Хабаровск)", ".pdf") == "MBOU_SOSH_No_3_g_Khabarovsk.pdf"
    assert safe_filename("«»/\\:*?", ".pdf") == "report.pdf"
    long = safe_filename("Школа " * 40, ".pdf")
    assert len(long) <= 84 and long.endswith(".pdf") and not long.endswith("_.pdf")


@pytest.mark.parametrize("name", ["Оценка программы ДПО", "Plain Name", 'Кавычки "и" запятая, тоже',
                                  "DPO evaluation / Оценка", "Школа № 3 — филиал"])
def test_display_names_read_back_unchanged(name):
    raw = f"From: {encode_display_name(name, 'a@example.org')}\r\n\r\nbody\r\n".encode("ascii")
    address = message_from_bytes(raw, policy=policy.default)["From"].addresses[0]
    assert (address.display_name, address.addr_spec) == (name, "a@example.org")
    # One encoded word per non-ASCII run: no two adjacent encoded words to glue differently.
    assert "?= =?" not in encode_display_name(name, "a@example.org")


def test_stamp_sets_date_and_a_fresh_message_id_only():
    data = b"From: a@x.org\r\nMessage-ID: <old@x>\r\nDate: yesterday\r\nSubject: s\r\n\r\nbody\r\n"
    when = datetime(2026, 4, 1, 9, 30, tzinfo=timezone.utc)
    first, message_id, date = stamp(data, "evaluation@dpo-eval.example.org", when)
    second, other_id, _ = stamp(data, "evaluation@dpo-eval.example.org", when)
    parsed = message_from_bytes(first, policy=policy.default)
    assert parsed["Message-ID"] == message_id != other_id and message_id.endswith("@dpo-eval.example.org>")
    assert date == "Wed, 01 Apr 2026 09:30:00 +0000" == parsed["Date"]
    assert first.count(b"Message-ID:") == 1 and first.count(b"Date:") == 1
    assert first.endswith(b"Subject: s\r\n\r\nbody\r\n")


# --------------------------------------------------------------------------- configuration digest


def test_one_configuration_digest_ignores_only_what_it_is_told():
    expected = hashlib.sha256(json.dumps({k: v for k, v in CONFIG.items() if k != "reproduce"},
                                         sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
    assert config_digest(CONFIG) == expected   # what the reports print, as before
    sending = json.loads(json.dumps(CONFIG))
    sending["delivery"]["smtp"]["host"] = "other.example.org"
    sending["delivery"]["ledger"] = "elsewhere.jsonl"
    sending["reproduce"] = True
    assert outbox_config_digest(sending) == outbox_config_digest(CONFIG)
    assert config_digest(sending) != config_digest(CONFIG)
    changed = json.loads(json.dumps(CONFIG))
    changed["delivery"]["sender_name"] = "Другое имя"
    assert outbox_config_digest(changed) != outbox_config_digest(CONFIG)


# --------------------------------------------------------------------------- plan and ledger


def manifest(*rows):
    return pd.DataFrame([{"institution": i, "emails": e, "attachment_sha256": a} for i, e, a in rows])


def test_plan_sends_once_and_stops_at_changed_or_unresolved(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for institution, recipient, sha, status in [("A", "a@x.org", "1", "sent"), ("B", "b@x.org", "2", "sent"),
                                                ("C", "c@x.org", "3", "sending"), ("D", "d@x.org", "4", "deferred"),
                                                ("E", "e@x.org", "5", "failed")]:
        ledger.append({"institution": institution, "recipient": recipient, "attachment_sha256": sha,
                       "status": status})
    rows = manifest(("A", "a@x.org", "1"), ("B", "b@x.org", "2-new"), ("C", "c@x.org", "3"),
                    ("D", "d@x.org", "4"), ("E", "e@x.org", "5"), ("F", "f1@x.org;f2@x.org", "6"))
    actions = lambda **kw: [(a["institution"], a["address"], a["action"]) for a in plan(rows, ledger, **kw)]
    assert actions() == [("A", "a@x.org", "skip"), ("B", "b@x.org", "changed"), ("C", "c@x.org", "unresolved"),
                         ("D", "d@x.org", "send"), ("E", "e@x.org", "send"), ("F", "f1@x.org", "send"),
                         ("F", "f2@x.org", "send")]
    assert ("B", "b@x.org", "resend") in actions(resend_changed=True)
    assert ("B", "b@x.org", "skip-changed") in actions(skip_changed=True)


def test_only_an_unresolved_send_can_be_resolved(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append({"institution": "A", "recipient": "a@x.org", "status": "sending"})
    with pytest.raises(DeliveryError, match="needs --status sent"):
        ledger.resolve("A", "a@x.org", "maybe", "")
    ledger.resolve("A", "a@x.org", "sent", "phoned")
    assert ledger.state()[("A", "a@x.org")]["status"] == "sent"
    assert ledger.state()[("A", "a@x.org")]["reply"] == "resolved by hand: phoned"
    with pytest.raises(DeliveryError, match="nothing to resolve"):
        ledger.resolve("A", "a@x.org", "failed", "")


def test_the_lock_admits_one_sender(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with ledger.exclusive():
        with pytest.raises(SenderBusyError, match=r"another delivery is running \(pid \d+ since ") as busy:
            with Ledger(tmp_path / "ledger.jsonl").exclusive(timeout=0.1, poll=0.05):
                pass
    assert busy.value.exit_code == 5
    with ledger.exclusive():   # released: a later sender gets it
        pass


# --------------------------------------------------------------------------- one SMTP transaction


class FakeServer:
    def __init__(self, outcome, transmitted=False):
        self.outcome, self.data_transmitted, self.closed, self.transmitted = outcome, False, False, transmitted

    def sendmail(self, sender, recipients, data):
        self.data_transmitted = self.transmitted
        if self.outcome is not None:
            raise self.outcome

    def close(self):
        self.closed = True


@pytest.mark.parametrize("outcome, transmitted, status, reply", [
    (None, False, "sent", "250 accepted"),
    (smtplib.SMTPDataError(451, b"try later"), True, "retry", "451 try later"),
    (smtplib.SMTPDataError(554, b"rejected"), True, "failed", "554 rejected"),
    (smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"no such user")}), False, "failed", "550 no such user"),
    (smtplib.SMTPServerDisconnected("gone"), False, "retry", "connection lost before"),
    (smtplib.SMTPServerDisconnected("gone"), True, "unresolved", "connection lost after"),
])
def test_transaction_outcomes(outcome, transmitted, status, reply):
    server = FakeServer(outcome, transmitted)
    result, text = transaction(server, "s@x.org", "a@x.org", b"data")
    assert result == status and text.startswith(reply)


def test_smtp_settings_from_the_environment_and_ca_file_problems(tmp_path, monkeypatch):
    monkeypatch.setenv("DPO_EVAL_SMTP_HOST", "mail.example.org")
    monkeypatch.setenv("DPO_EVAL_SMTP_CAFILE", "ca.pem")
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    settings = smtp_settings(CONFIG, tmp_path)
    assert (settings.host, settings.port, settings.password) == ("mail.example.org", 587, "pw")
    assert settings.cafile == str(tmp_path / "ca.pem")   # relative to the project
    with pytest.raises(CaFileError, match="does not exist") as missing:
        tls_context(settings)
    assert missing.value.exit_code == 8
    (tmp_path / "ca.pem").write_text("not a certificate", encoding="utf-8")
    with pytest.raises(CaFileError, match="cannot be read as PEM"):
        tls_context(settings)
    monkeypatch.setenv("DPO_EVAL_SMTP_PORT", "smtp")
    with pytest.raises(DeliveryError, match="is not a port number"):
        smtp_settings(CONFIG, tmp_path)


# --------------------------------------------------------------------------- outbox and staleness


REGISTRY = ("id,name,name_en,municipality,municipality_en,type,settlement,language,email\n"
            "SCH900,Школа № 900,School No. 900,г. Хабаровск,Khabarovsk,school,urban,en,s@x.org\n")


@pytest.fixture
def small_outbox(tmp_path) -> Path:
    """A project with one school's report and its outbox (the report a stand-in PDF)."""
    (tmp_path / "registry.csv").write_text(REGISTRY, encoding="utf-8")
    (tmp_path / "recipients.csv").write_text("institution,name,emails,language,report\n"
                                             "SCH900,Директор,d@sch900.example.org,en,institution\n",
                                             encoding="utf-8")
    (tmp_path / "reports" / "institutions").mkdir(parents=True)
    (tmp_path / "reports" / "institutions" / "SCH900.pdf").write_bytes(b"%PDF-1.7 report")
    write_outbox(CONFIG, tmp_path / "recipients.csv", tmp_path / "registry.csv", tmp_path / "reports",
                 REPO / "reports" / "templates" / "email.txt", REPO / "reports" / "i18n", tmp_path / "outbox",
                 provenance=[tmp_path / "registry.csv"], configuration=outbox_config_digest(CONFIG), project=tmp_path)
    return tmp_path


def test_outbox_message_is_addressed_named_and_deterministic(small_outbox):
    data = (small_outbox / "outbox" / "SCH900.eml").read_bytes()
    message = message_from_bytes(data, policy=policy.default)
    assert message["X-DPO-Eval-Institution"] == "SCH900" and message["To"] == "d@sch900.example.org"
    assert message["Subject"].endswith(": School No. 900")   # the registry's English name
    assert next(message.iter_attachments()).get_filename() == "School_No_900.en.pdf"
    assert "Date" not in message and "Message-ID" not in message
    row = pd.read_csv(small_outbox / "outbox" / "manifest.csv", dtype=str).iloc[0]
    assert row["message_sha256"] == hashlib.sha256(data).hexdigest()
    assert row["own_figure"] == "no"   # no index of the school reports: no figure known
    (small_outbox / "outbox" / "SCH900.eml").unlink()
    write_outbox(CONFIG, small_outbox / "recipients.csv", small_outbox / "registry.csv", small_outbox / "reports",
                 REPO / "reports" / "templates" / "email.txt", REPO / "reports" / "i18n",
                 small_outbox / "outbox", provenance=[small_outbox / "registry.csv"], project=small_outbox)
    assert (small_outbox / "outbox" / "SCH900.eml").read_bytes() == data


def test_an_unchanged_outbox_is_current(small_outbox):
    checked = check_outbox_current(small_outbox / "outbox" / "manifest.csv", small_outbox, CONFIG)
    assert checked["institution"].tolist() == ["SCH900"]


@pytest.mark.parametrize("change, named", [
    (lambda p: (p / "registry.csv").write_text(REGISTRY.replace("900,", "901,", 1), encoding="utf-8"),
     "registry.csv"),
    (lambda p: (p / "registry.csv").unlink(), "registry.csv (missing)"),
    (lambda p: (p / "reports" / "institutions" / "SCH900.pdf").write_bytes(b"%PDF-1.7 new"),
     "SCH900.pdf (report)"),
    (lambda p: (p / "outbox" / "SCH900.eml").write_bytes(b"edited"), "SCH900.eml (message)"),
    (lambda p: (p / "outbox" / "inputs.csv").unlink(), "inputs.csv is missing"),
    (lambda p: (p / "outbox" / "manifest.csv").unlink(), "there is no outbox"),
])
def test_a_stale_outbox_is_refused_naming_what_changed(small_outbox, change, named):
    change(small_outbox)
    with pytest.raises(StaleOutboxError) as stale:
        check_outbox_current(small_outbox / "outbox" / "manifest.csv", small_outbox, CONFIG)
    assert named in str(stale.value) and "nothing was sent" in str(stale.value)
    assert stale.value.exit_code == 3


def test_a_report_removed_by_a_failed_rebuild_leaves_the_outbox_sendable(small_outbox):
    """The message carries the report; what the outbox was built from is unchanged."""
    (small_outbox / "reports" / "institutions" / "SCH900.pdf").unlink()
    check_outbox_current(small_outbox / "outbox" / "manifest.csv", small_outbox, CONFIG)


def test_the_outbox_directory_holds_the_current_recipients_only(small_outbox):
    withdrawn = small_outbox / "outbox" / "SCH899.eml"
    withdrawn.write_bytes(b"a message of a recipient no longer listed")
    write_outbox(CONFIG, small_outbox / "recipients.csv", small_outbox / "registry.csv", small_outbox / "reports",
                 REPO / "reports" / "templates" / "email.txt", REPO / "reports" / "i18n",
                 small_outbox / "outbox", provenance=[small_outbox / "registry.csv"], project=small_outbox)
    assert sorted(p.name for p in (small_outbox / "outbox").iterdir()) == ["SCH900.eml", "inputs.csv",
                                                                           "manifest.csv"]


def test_a_configuration_change_makes_the_outbox_stale_except_how_to_send(small_outbox):
    manifest_path = small_outbox / "outbox" / "manifest.csv"
    how = json.loads(json.dumps(CONFIG))
    how["delivery"]["smtp"]["port"] = 465
    check_outbox_current(manifest_path, small_outbox, how)
    what = json.loads(json.dumps(CONFIG))
    what["study"]["report_date"] = "2026-05-01"
    with pytest.raises(StaleOutboxError, match="the configuration"):
        check_outbox_current(manifest_path, small_outbox, what)

"""The e-mail of one recipient: body in the recipient's language, the report attached under a
file name transliterated to Latin letters, the sender's display name encoded after RFC 2047;
the send date and a fresh Message-ID are stamped only when it is sent."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import jinja2

from dpo_eval.core.registry import Recipient

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



def stamp(data: bytes, sender: str, now: datetime | None = None) -> tuple[bytes, str, str]:
    """The message as actually sent: the outbox bytes with the send date and a fresh
    Message-ID (RFC 5322 sections 3.6.1 and 3.6.4). Returns (bytes, Message-ID, Date)."""
    now = now or datetime.now(timezone.utc)
    date = format_datetime(now.astimezone(timezone.utc).replace(microsecond=0))
    message_id = make_msgid(domain=sender.rpartition("@")[2] or None)
    data = _replace_header(data, "Message-ID", message_id)
    data = _replace_header(data, "Date", date)
    return data, message_id, date


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


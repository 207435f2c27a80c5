"""SMTP: the connection settings (configuration and environment), TLS with verified
certificates, login, and one SMTP transaction with its outcome."""

from __future__ import annotations

import ipaddress
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from dpo_eval.delivery.errors import (CaFileError, DeliveryError, SmtpConnectionError, SmtpLoginError,
                                      SmtpTlsError)
from dpo_eval.delivery.project import in_project

PASSWORD_ENV = "DPO_EVAL_SMTP_PASSWORD"


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
        raise SmtpConnectionError(f"cannot connect to the SMTP server {where} ({reason(exc)}); check "
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
                                  f"({reason(exc)}); nothing was sent") from exc
    except BaseException:
        server.close()
        raise


def _untrusted(where: str, exc: ssl.SSLCertVerificationError) -> SmtpTlsError:
    return SmtpTlsError(f"the TLS certificate of {where} is not trusted ({exc.verify_message or exc.reason}); "
                        "give the CA that signed it in delivery.smtp.cafile (or DPO_EVAL_SMTP_CAFILE); "
                        "nothing was sent")


def reason(exc: BaseException) -> str:
    """The short reason of a connection error, for a one-line message."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__



def transaction(server: smtplib.SMTP, sender: str, address: str, data: bytes) -> tuple[str, str]:
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
            return "unresolved", f"connection lost after the message was transmitted ({reason(exc)})"
        return "retry", f"connection lost before the server accepted the message ({reason(exc)})"
    else:
        return "sent", "250 accepted"
    text = f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    return ("retry" if 400 <= code < 500 else "failed"), text


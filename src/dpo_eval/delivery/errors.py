"""Errors that stop delivery before anything (more) is sent, each with the exit status of
``python -m dpo_eval.delivery`` (the table is in the package docstring and README.md)."""

from __future__ import annotations

from dpo_eval.core.errors import UserError


class DeliveryError(UserError, RuntimeError):
    """A problem that stops delivery before anything (more) is sent; the message says what to
    do. ``exit_code`` is the command's exit status (see the module docstring)."""

    exit_code = 2


class StaleOutboxError(DeliveryError):
    """The outbox is older than the reports or the recipients it was built from."""

    exit_code = 3


class ChangedReportsError(DeliveryError):
    """A report already sent has changed since; resending needs an explicit request."""

    exit_code = 4


class SenderBusyError(DeliveryError):
    """Another `send` holds the ledger's lock."""

    exit_code = 5


class SmtpConnectionError(DeliveryError):
    """The SMTP server cannot be reached."""

    exit_code = 6


class SmtpTlsError(DeliveryError):
    """No encrypted connection: the server offers no STARTTLS, the handshake or the certificate
    check fails, or a password would go over an unencrypted connection."""

    exit_code = 7


class CaFileError(DeliveryError):
    """The certificate authority file given for the server cannot be read."""

    exit_code = 8


class SmtpLoginError(DeliveryError):
    """The server refuses the login."""

    exit_code = 9


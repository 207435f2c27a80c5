"""Errors that stop delivery before anything (more) is sent, each with the exit status of
``python -m dpo_eval.delivery`` (the table is in the package docstring and README.md)."""

from __future__ import annotations

from dpo_eval.errors import UserError


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


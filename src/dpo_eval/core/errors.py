"""Errors the user can fix, saying where the problem is and what to do about it.

Every user-facing error of the package derives from :class:`UserError`. The step adapters and the
DAG build catch it, print its message once, cleanly, and exit non-zero (the traceback goes to the
rule's log only); any other exception is a bug and keeps its traceback on the console.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

# How many problems one message lists before it summarises the rest by their count: enough to
# see the pattern and fix it in one pass, few enough to read in a terminal.
MAX_LISTED = 50
# Cell values longer than this are shortened in messages (a 1 MB cell must not flood the console).
MAX_SHOWN = 80


class UserError(Exception):
    """A problem in the user's input or configuration that the user can fix (not a bug)."""


class ConfigError(UserError, ValueError):
    """The configuration or the codebook is not valid; the message names the key and the fix."""


def shown(value: object) -> str:
    """``repr`` of a cell value for a message, shortened when it is long."""
    text = str(value)
    if len(text) > MAX_SHOWN:
        return repr(text[:MAX_SHOWN]) + f"... ({len(text)} characters)"
    return repr(text)


class InputError(UserError, ValueError):
    """A problem in an input file, located by file, row and column, with the fix.

    ``row`` is the row number a spreadsheet program shows (the header is row 1, blank lines
    count)."""

    def __init__(self, path: str | Path | None, row: int | None, column: str | None,
                 problem: str, fix: str):
        self.path, self.row, self.column, self.problem, self.fix = path, row, column, problem, fix
        where = [str(path)] if path is not None else []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where) or 'input'}: {problem}. What to do: {fix}.")


class InputErrors(UserError, ValueError):
    """Several input problems reported at once, so that a researcher fixes them in one pass."""

    def __init__(self, errors: list[InputError], limit: int = MAX_LISTED):
        self.errors = errors
        shown_errors = "\n".join(f"  - {error}" for error in errors[:limit])
        more = (f"\n  ... and {len(errors) - limit} more problem(s) of the same kinds"
                if len(errors) > limit else "")
        super().__init__(f"{len(errors)} problem(s) in the input data:\n{shown_errors}{more}")


def raise_all(problems: list[InputError]) -> None:
    """Raise the collected problems: one as itself, several as :class:`InputErrors`."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InputErrors(problems)


def user_message(error: BaseException) -> str:
    return f"ERROR: {error}"


@contextlib.contextmanager
def exit_on_user_error():
    """Turn a :class:`UserError` into its message on stderr and exit status 1, without a
    traceback (used where Snakemake builds the DAG; any other exception propagates)."""
    try:
        yield
    except UserError as error:
        print(user_message(error), file=sys.stderr)
        raise SystemExit(1) from None

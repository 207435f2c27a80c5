"""Errors about input data that say where the problem is and what to do about it."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A problem in an input file, located by file, row and column, with the fix."""

    def __init__(self, path: str | Path | None, row: int | None, column: str | None,
                 problem: str, fix: str):
        self.path, self.row, self.column, self.problem, self.fix = path, row, column, problem, fix
        where = [str(path)] if path is not None else []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where) or 'input'}: {problem}. What to do: {fix}.")


class InputErrors(ValueError):
    """Several input problems reported at once, so that a researcher fixes them in one pass."""

    def __init__(self, errors: list[InputError], limit: int = 50):
        self.errors = errors
        shown = "\n".join(f"  - {error}" for error in errors[:limit])
        more = f"\n  ... and {len(errors) - limit} more" if len(errors) > limit else ""
        super().__init__(f"{len(errors)} problem(s) in the input data:\n{shown}{more}")

"""Writing outputs deterministically and atomically, and sending a step's output to its log."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import sys
import traceback
from pathlib import Path

import pandas as pd

from dpo_eval.core.csv_text import csv_chunks
from dpo_eval.core.errors import UserError, user_message


def _part_file(path: Path, pieces) -> Path:
    """Write ``pieces`` (bytes) to a new file next to ``path`` and return it. The file is
    created with mode 0666 less the umask, like any file a program writes (0644 under the usual
    umask 022), so that colleagues can read the results where the umask lets them;
    ``tempfile.mkstemp`` would make it 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.part"
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            for piece in pieces:
                stream.write(piece)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV with fixed float formatting (``csv_text.FLOAT_FORMAT``) and "\\n" line
    endings (byte-stable): ``DataFrame.to_csv`` without the index, as ``csv_chunks`` writes it."""
    return b"".join(csv_chunks(frame))


def json_bytes(payload: object) -> bytes:
    return (json.dumps(payload, ensure_ascii=False, indent=1, sort_keys=True, allow_nan=True)
            + "\n").encode("utf-8")


def write_outputs(outputs: dict[str | Path, pd.DataFrame | dict | list | bytes]) -> None:
    """Write every output to a part file next to it and rename them over the outputs only when
    all are written, so that a failure leaves no half-written file (readers see the old file or
    the new one). Tables are written in chunks of lines (``csv_text.csv_chunks``, the bytes of
    ``csv_bytes``), never held whole as text; other payloads are serialised before any file is
    touched."""
    payloads = {Path(path): value if isinstance(value, (pd.DataFrame, bytes)) else json_bytes(value)
                for path, value in outputs.items()}
    parts: dict[Path, Path] = {}
    try:
        for path, value in payloads.items():
            pieces = csv_chunks(value) if isinstance(value, pd.DataFrame) else [value]
            parts[path] = _part_file(path, pieces)
        for path, tmp in list(parts.items()):
            os.replace(tmp, path)
            del parts[path]
    finally:
        for tmp in parts.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True, encoding="utf-8")


@contextlib.contextmanager
def step_log(path: str | Path):
    """Send a step's messages (logging, print, warnings and the error) to its log file.

    A :class:`~dpo_eval.core.errors.UserError` ends the process with its message on stderr and exit
    status 1, without a traceback on the console; any other exception (a bug) propagates with
    its traceback. Both tracebacks are written to the log."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield logging.getLogger("dpo_eval")
        except UserError as exc:
            # A problem the user fixes: the message once on the console, no traceback there
            # (it stays in the log for developers), and a non-zero exit status.
            stream.write("".join(traceback.format_exception(exc)))
            stream.flush()
            print(f"{user_message(exc)}\n(log: {path})", file=sys.stderr)
            raise SystemExit(1) from None
        except Exception as exc:
            stream.write("".join(traceback.format_exception(exc)))
            stream.flush()
            print(f"ERROR: {exc}\n(details in {path})", file=sys.stderr)
            raise
        finally:
            root.removeHandler(handler)
            logging.captureWarnings(False)

"""The ledger: an append-only JSON-lines record of every send, and the lock that lets one
sender at a time use it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from dpo_eval.delivery.errors import DeliveryError, SenderBusyError


class Ledger:
    """Append-only JSON-lines record of every send: 'sending' before, 'sent', 'failed' or
    'deferred' after.

    A 'sending' record without its outcome means the process stopped between the two writes (or
    the connection broke after the message was transmitted): whether the server accepted it is
    unknown, so it is reported for a person to resolve (``resolve``), never retried or skipped
    silently."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def exclusive(self, timeout: float = 0.0, poll: float = 0.2):
        """Hold the ledger's lock (``fcntl.flock`` on ``<ledger>.lock``, released by the operating
        system if the process dies) for the whole block; wait at most ``timeout`` seconds for
        another sender to finish, then stop with SenderBusyError."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+", encoding="utf-8") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "unknown process"
                        raise SenderBusyError(
                            f"another delivery is running ({holder}; lock {self.lock_path}); nothing was "
                            "sent: wait until it has finished, or give --wait SECONDS") from None
                    time.sleep(poll)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} since {now()}\n")
            handle.flush()
            try:
                yield self
            finally:
                handle.seek(0)
                handle.truncate()
                handle.flush()
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            stream.flush()
            os.fsync(stream.fileno())

    def state(self) -> dict[tuple[str, str], dict]:
        """Latest record per (institution, recipient address)."""
        latest = {}
        for record in self.records():
            latest[(record["institution"], record["recipient"])] = record
        return latest

    def resolve(self, institution: str, recipient: str, status: str, note: str) -> None:
        """A person's decision on an unresolved send: 'sent' (it arrived) or 'failed' (resend)."""
        if status not in ("sent", "failed"):
            raise DeliveryError(f"resolve needs --status sent (it arrived) or failed (send again), not {status!r}")
        with self.exclusive():
            previous = self.state().get((institution, recipient))
            if previous is None or previous["status"] != "sending":
                raise DeliveryError(f"nothing to resolve for {institution} <{recipient}>")
            self.append({**previous, "status": status, "time": now(), "reply": f"resolved by hand: {note}"})


def now() -> str:
    """The current time in UTC, to the second (ISO 8601), as the ledger records it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


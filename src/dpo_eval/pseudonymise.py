"""Pseudonymisation: keyed hashes of participant codes, with the secret kept out of the repo."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from dpo_eval.errors import UserError

# Used only when the config says allow_demo_secret: true (the bundled demo study). Keys made with
# it are reproducible by anyone and therefore offer no protection for real data.
DEMO_SECRET = "DEMO-SECRET-dpo_eval-not-for-real-data"


class SecretError(UserError, RuntimeError):
    pass


def load_secret(settings: dict, results_dir: str | Path = "results",
                repo_dir: str | Path | None = None) -> tuple[bytes, str]:
    """The HMAC secret and a description of where it came from.

    Order: the environment variable named by ``secret_env``, then ``secret_file``, then the demo
    secret if allowed. A secret file inside the repository or ``results/`` is refused, because
    both are shared (git, reproduction package).
    """
    value = os.environ.get(settings["secret_env"])
    if value:
        return value.encode("utf-8"), f"environment variable {settings['secret_env']}"
    secret_file = settings.get("secret_file")
    if secret_file:
        path = Path(secret_file).expanduser().resolve()
        for shared in filter(None, [Path(results_dir).resolve(),
                                    Path(repo_dir).resolve() if repo_dir else None]):
            if path.is_relative_to(shared):
                raise SecretError(f"pseudonymisation.secret_file {path} lies inside {shared}; "
                                  "keep the secret outside the repository and results/")
        if not path.exists():
            raise SecretError(f"pseudonymisation.secret_file {path} does not exist")
        return path.read_bytes().strip(), f"file {path}"
    if settings.get("allow_demo_secret"):
        return DEMO_SECRET.encode("utf-8"), "DEMO secret (demo data only)"
    raise SecretError(f"no pseudonymisation secret: set the environment variable "
                      f"{settings['secret_env']} or pseudonymisation.secret_file")


def participant_key(secret: bytes, institution: str, code: str) -> str:
    """HMAC-SHA256 of "institution:code", shortened to 16 hex digits (64 bits), prefixed "P"."""
    digest = hmac.new(secret, f"{institution}:{code}".encode("utf-8"), hashlib.sha256)
    return "P" + digest.hexdigest()[:16]


def respondent_key(secret: bytes, source: str, row: int) -> str:
    """Key of an anonymous one-off respondent (needs assessment): no code, so file and row."""
    digest = hmac.new(secret, f"{source}#{row}".encode("utf-8"), hashlib.sha256)
    return "R" + digest.hexdigest()[:16]

"""Pseudonymisation: keyed hashes of participant codes, with the secret kept out of the repo."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from dpo_eval.core.errors import UserError
from dpo_eval.core.io import sha256_file

# Used only when the config says allow_demo_secret: true AND every raw input is a file of the
# bundled demo study. Keys made with it are reproducible by anyone (the secret is in the source)
# and therefore offer no protection: real data must never be keyed with it.
DEMO_SECRET = "DEMO-SECRET-dpo_eval-not-for-real-data"
DEMO_ORIGIN = "DEMO secret (bundled demo study only)"
# SHA-256 of the raw files of the bundled demo study (data/raw/, `make demo-data`). A test checks
# that this list matches data/raw; regenerate it when the demo study is regenerated.
DEMO_STUDY_SHA256 = {
    "followup_excel_ru.csv": "3fcf6f68f09ed97d5bf82346793e0be71d99d86829846a706f838ab925bed2ec",
    "institutions.csv": "e32ea8863736eedc06fb6fff903373929e8de9d3d7e278793ac8c1d0a64fb2e8",
    "needs_assessment_google.csv": "5def182dc2ce2b0f3166911ad2c6020124b161580f354d37027e6e480000ad19",
    "post_exit_yandex.xlsx": "89c0345e0ea889fe90c2f2953397cd8d1ea268444064b2fcc28e3b42439b4d4c",
    "pre_entry_google.csv": "40aa232a56f36aceebf574ed6320121c137adbaa79fb6f2ee91575afef3e4520",
}


class SecretError(UserError, RuntimeError):
    pass


def not_demo_inputs(inputs: list[str | Path]) -> list[str]:
    """The inputs that are not files of the bundled demo study (by SHA-256, not by name)."""
    demo = set(DEMO_STUDY_SHA256.values())
    return [str(path) for path in inputs if sha256_file(path) not in demo]


def load_secret(settings: dict, results_dir: str | Path = "results",
                repo_dir: str | Path | None = None,
                inputs: list[str | Path] | None = None) -> tuple[bytes, str]:
    """The HMAC secret and a description of where it came from (``DEMO_ORIGIN`` for the demo).

    Order: the environment variable named by ``secret_env``, then ``secret_file``, then the demo
    secret if allowed AND every raw input (``inputs``: the survey exports and the registry) is a
    file of the bundled demo study. A secret file inside the repository or ``results/`` is
    refused, because both are shared (git, reproduction package).
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
    how = (f"set the environment variable {settings['secret_env']} or pseudonymisation.secret_file "
           "(a file outside the repository) to a long random secret that only the research team knows")
    if settings.get("allow_demo_secret"):
        if inputs is None:
            raise SecretError(f"the demo secret can only be used when the inputs are checked; {how}")
        foreign = not_demo_inputs(inputs)
        if foreign:
            raise SecretError(f"pseudonymisation.allow_demo_secret is true, but {', '.join(foreign)} "
                              f"{'is' if len(foreign) == 1 else 'are'} not part of the bundled demo "
                              f"study: the demo secret is public and would not protect these data; {how}")
        return DEMO_SECRET.encode("utf-8"), DEMO_ORIGIN
    raise SecretError(f"no pseudonymisation secret: {how}")


def pseudonymisation_record(origin: str) -> dict:
    """What the reports need to know about the secret: whether it was the public demo one."""
    return {"demo_secret": origin == DEMO_ORIGIN,
            "note": ("keys made with the public demo secret: for the bundled demo study only"
                     if origin == DEMO_ORIGIN else "keys made with the project's own secret")}


def participant_key(secret: bytes, institution: str, code: str) -> str:
    """HMAC-SHA256 of "institution:code", shortened to 16 hex digits (64 bits), prefixed "P"."""
    digest = hmac.new(secret, f"{institution}:{code}".encode("utf-8"), hashlib.sha256)
    return "P" + digest.hexdigest()[:16]


def respondent_key(secret: bytes, source: str, row: int) -> str:
    """Key of an anonymous one-off respondent (needs assessment): no code, so file and row."""
    digest = hmac.new(secret, f"{source}#{row}".encode("utf-8"), hashlib.sha256)
    return "R" + digest.hexdigest()[:16]

"""Delivery step: the outbox, one e-mail per recipient, a manifest and the digests of its
inputs (rule `outbox`). Sending is separate (`python -m dpo_eval.delivery send`)."""

from __future__ import annotations

from pathlib import Path

from dpo_eval.delivery.outbox import write_outbox
from dpo_eval.core.settings import OutboxSettings

MANIFEST = "manifest.csv"


def outbox(settings: OutboxSettings, recipients: str | Path, registry: str | Path,
           reports_dir: str | Path, template: str | Path, i18n_dir: str | Path,
           outbox_dir: str | Path, provenance: list[str | Path] = (), configuration: str = "") -> None:
    """One .eml per recipient with its report attached, ``manifest.csv`` of who gets what and
    ``inputs.csv`` (the digests of ``provenance`` and of the ``configuration``), in
    ``outbox_dir`` (a directory output: it holds nothing else)."""
    outbox_dir = Path(outbox_dir)
    write_outbox(settings.delivery_config(), recipients, registry, reports_dir, template, i18n_dir,
                 outbox_dir, outbox_dir / MANIFEST, provenance=list(provenance),
                 configuration=configuration, project=Path.cwd())

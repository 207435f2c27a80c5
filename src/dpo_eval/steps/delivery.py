"""Delivery step: the outbox, one e-mail per recipient and a manifest. Sending is separate
(`python -m dpo_eval.delivery send`)."""

from __future__ import annotations

from pathlib import Path

from dpo_eval.delivery import write_outbox


def outbox(config: dict, recipients: str | Path, registry: str | Path, reports_dir: str | Path,
           template: str | Path, i18n_dir: str | Path, outbox_dir: str | Path,
           manifest: str | Path) -> None:
    """One .eml per recipient with its report attached, and the manifest of who gets what."""
    write_outbox(config, recipients, registry, reports_dir, template, i18n_dir, outbox_dir, manifest)

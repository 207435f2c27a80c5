"""Ingest steps: raw exports -> pseudonymised tables, and the checksums of every input file.
Personal data are read here and nowhere else."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dpo_eval.core.codebook import load_codebook
from dpo_eval.ingest import ingest_competencies
from dpo_eval.ingest import ingest_needs as read_needs_exports
from dpo_eval.core.registry import load_registry
from dpo_eval.core.io import sha256_file, write_outputs
from dpo_eval.ingest.pseudonymise import load_secret, pseudonymisation_record
from dpo_eval.core.settings import IngestSettings, NeedsIngestSettings

log = logging.getLogger("dpo_eval")


def ingest(settings: IngestSettings, registry: str | Path, codebook: str | Path, output: dict,
           results_dir: str | Path = "results", repo_dir: str | Path | None = None) -> None:
    """Raw competency exports -> pseudonymised long responses, respondents, flow and audit."""
    codebook = load_codebook(codebook)
    # The demo secret only for the demo study: decided by the checksums of what is read here.
    exports = [f for wave in settings.waves.values() for f in wave["files"]]
    secret, origin = load_secret(settings.pseudonymisation, results_dir, repo_dir,
                                 inputs=[*exports, registry])
    registry = load_registry(registry)
    log.info("pseudonymisation secret: %s", origin)
    result, invalid = ingest_competencies(settings.ingest_config(), codebook, registry, secret)
    for problem in invalid:
        log.warning("set to missing: %s", problem)
    log.info("responses: %d rows, %d participants", len(result.responses),
             result.responses["participant_key"].nunique())
    write_outputs({
        output["responses"]: result.responses,
        output["respondents"]: result.respondents,
        output["flow_waves"]: result.flow,
        output["match_audit"]: result.match_audit,
        output["duplicates"]: result.duplicates,
        output["invalid_values"]: result.invalid_values,
        output["institutions"]: registry.drop(columns="email"),
        output["pseudonymisation"]: pseudonymisation_record(origin),
    })


def input_manifest(files: list[str], output: str | Path) -> None:
    """SHA-256 of every input file (the provenance appendix of the reports reads this table, so
    that a rebuild from the pseudonymised reproduction package prints the same)."""
    write_outputs({output: pd.DataFrame([{"path": str(f), "sha256": sha256_file(f)}
                                         for f in sorted(set(map(str, files)))])})


def ingest_needs(settings: NeedsIngestSettings, registry: str | Path, codebook: str | Path,
                        output: dict, results_dir: str | Path = "results",
                        repo_dir: str | Path | None = None) -> None:
    """Raw needs-assessment export -> pseudonymised importance ratings and preferred formats."""
    codebook = load_codebook(codebook)
    secret, _ = load_secret(settings.pseudonymisation, results_dir, repo_dir,
                            inputs=[*settings.needs["files"], registry])
    registry = load_registry(registry)
    needs, formats = read_needs_exports(settings.needs, codebook, registry, secret,
                                  settings.unknown_columns)
    log.info("needs assessment: %d respondents", needs["respondent_key"].nunique())
    write_outputs({output["needs"]: needs, output["needs_formats"]: formats})

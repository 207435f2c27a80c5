from pathlib import Path

from dpo_eval import pipeline
from dpo_eval.io import step_log

with step_log(snakemake.log[0]):
    pipeline.ingest_needs_survey(snakemake.config, snakemake.output,
                                 repo_dir=Path(snakemake.scriptdir).resolve().parents[1])

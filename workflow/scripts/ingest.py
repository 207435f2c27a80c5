from pathlib import Path

from dpo_eval.io import step_log
from dpo_eval.steps import ingest

with step_log(snakemake.log[0]):
    ingest.ingest(snakemake.config, snakemake.output,
                  repo_dir=Path(snakemake.scriptdir).resolve().parents[1])

from pathlib import Path

from dpo_eval.core.io import step_log
from dpo_eval.core.settings import IngestSettings
from dpo_eval.steps import ingest_rules

with step_log(snakemake.log[0]):
    ingest_rules.ingest(IngestSettings.from_params(snakemake.params.settings), snakemake.input.registry,
                  snakemake.input.codebook, snakemake.output,
                  repo_dir=Path(snakemake.scriptdir).resolve().parents[1])

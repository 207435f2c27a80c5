from dpo_eval.core.io import step_log
from dpo_eval.steps import ingest_rules

with step_log(snakemake.log[0]):
    ingest_rules.input_manifest(list(snakemake.input.files), snakemake.output[0])

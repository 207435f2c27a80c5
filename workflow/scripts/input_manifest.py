from dpo_eval.io import step_log
from dpo_eval.steps import ingest

with step_log(snakemake.log[0]):
    ingest.input_manifest(list(snakemake.input.files), snakemake.output[0])

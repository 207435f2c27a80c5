from dpo_eval.delivery import build_manifest
from dpo_eval.io import step_log

with step_log(snakemake.log[0]):
    build_manifest(snakemake.input.registry, snakemake.input.reports, snakemake.output[0])

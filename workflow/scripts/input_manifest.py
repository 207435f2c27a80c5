from dpo_eval import pipeline
from dpo_eval.io import step_log

with step_log(snakemake.log[0]):
    pipeline.input_manifest(list(snakemake.input), snakemake.output[0])

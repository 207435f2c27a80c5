from dpo_eval import pipeline
from dpo_eval.io import step_log

with step_log(snakemake.log[0]):
    pipeline.collect_models(snakemake.input.fits, snakemake.input.combined, snakemake.output)

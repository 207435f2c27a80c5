from dpo_eval import pipeline
from dpo_eval.io import step_log

with step_log(snakemake.log[0]):
    pipeline.needs_analysis(snakemake.input.needs, snakemake.input.formats, snakemake.output)

from dpo_eval.io import step_log
from dpo_eval.steps import analysis

with step_log(snakemake.log[0]):
    analysis.collect_models(snakemake.input.fits, snakemake.input.combined, snakemake.output)

from dpo_eval.core.io import step_log
from dpo_eval.steps import analysis_rules

with step_log(snakemake.log[0]):
    analysis_rules.collect_models(snakemake.input.fits, snakemake.input.combined, snakemake.output)

from dpo_eval.core.io import step_log
from dpo_eval.steps import analysis_rules

with step_log(snakemake.log[0]):
    analysis_rules.needs_analysis(snakemake.input.needs, snakemake.input.formats, snakemake.output)

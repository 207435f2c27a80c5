from dpo_eval.core.io import step_log
from dpo_eval.steps import reports_rules

with step_log(snakemake.log[0]):
    reports_rules.data_dictionary(snakemake.input.tables, snakemake.output[0])

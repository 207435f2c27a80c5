from dpo_eval.core.io import step_log
from dpo_eval.steps import reports_rules

with step_log(snakemake.log[0]):
    reports_rules.open_data_package(snakemake.input.responses, snakemake.params.min_cell, snakemake.output[0])

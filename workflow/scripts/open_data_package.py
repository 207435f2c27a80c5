from dpo_eval.io import step_log
from dpo_eval.steps import reports

with step_log(snakemake.log[0]):
    reports.open_data_package(snakemake.input.responses, snakemake.params.min_cell, snakemake.output[0])

from dpo_eval.io import step_log
from dpo_eval.steps import reports

with step_log(snakemake.log[0]):
    reports.data_dictionary(snakemake.input.tables, snakemake.output[0])

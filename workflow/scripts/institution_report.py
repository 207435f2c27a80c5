from dpo_eval.io import step_log
from dpo_eval.steps import reports

with step_log(snakemake.log[0]):
    reports.institution_report(snakemake.config, snakemake.input,
                               snakemake.wildcards.institution, snakemake.output[0])

from dpo_eval.io import step_log
from dpo_eval.settings import ReportSettings
from dpo_eval.steps import reports

with step_log(snakemake.log[0]):
    reports.evaluation_report(ReportSettings.from_params(snakemake.params.settings),
                              snakemake.params.computed_with, snakemake.input,
                              snakemake.wildcards.lang, snakemake.output[0])

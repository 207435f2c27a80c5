from dpo_eval.core.io import step_log
from dpo_eval.core.settings import ReportSettings
from dpo_eval.steps import reports_rules

with step_log(snakemake.log[0]):
    reports_rules.evaluation_report(ReportSettings.from_params(snakemake.params.settings),
                              snakemake.params.computed_with, snakemake.input,
                              snakemake.wildcards.lang, snakemake.output[0])

from dpo_eval.io import step_log
from dpo_eval.settings import InstitutionReportSettings
from dpo_eval.steps import reports

with step_log(snakemake.log[0]):
    reports.institution_reports(InstitutionReportSettings.from_params(snakemake.params.settings),
                                snakemake.input, snakemake.output[0])

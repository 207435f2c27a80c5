import sys

from dpo_eval.core.io import step_log
from dpo_eval.core.settings import InstitutionReportSettings
from dpo_eval.steps import reports_rules

with step_log(snakemake.log[0]):
    problems = reports_rules.institution_report_batch(
        InstitutionReportSettings.from_params(snakemake.params.settings), snakemake.input,
        snakemake.params.schools, snakemake.output[0], threads=snakemake.threads)
# The data warnings go to the console too, not only to the log.
for line in problems:
    print(f"institution_report_batch {snakemake.wildcards.batch}: {line}", file=sys.stderr)

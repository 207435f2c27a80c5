import sys

from dpo_eval.core.io import step_log
from dpo_eval.steps import reports_rules

with step_log(snakemake.log[0]):
    problems = reports_rules.institution_reports(snakemake.input.batches, snakemake.output[0])
for line in problems:
    print(f"institution_reports: {line}", file=sys.stderr)

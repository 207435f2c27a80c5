from dpo_eval.core.io import step_log
from dpo_eval.reporting.power_report import build_power_report

with step_log(snakemake.log[0]):
    build_power_report(snakemake.params.settings, snakemake.params.reports, snakemake.input,
                       snakemake.wildcards.lang, snakemake.output)

from dpo_eval.io import step_log
from dpo_eval.report import build_institution_report

with step_log(snakemake.log[0]):
    build_institution_report(snakemake.config, snakemake.input, snakemake.wildcards.institution,
                             snakemake.output[0])

from dpo_eval.io import step_log
from dpo_eval.report import build_evaluation_report

with step_log(snakemake.log[0]):
    build_evaluation_report(snakemake.config, snakemake.input, snakemake.wildcards.lang,
                            snakemake.output[0])

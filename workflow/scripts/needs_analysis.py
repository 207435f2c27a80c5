from dpo_eval.io import step_log
from dpo_eval.steps import analysis

with step_log(snakemake.log[0]):
    analysis.needs_analysis(snakemake.input.needs, snakemake.input.formats, snakemake.output)

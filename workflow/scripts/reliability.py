from dpo_eval.io import step_log
from dpo_eval.steps import analysis

with step_log(snakemake.log[0]):
    analysis.reliability(snakemake.input.codebook, snakemake.input.responses, snakemake.output[0])

from dpo_eval.io import step_log
from dpo_eval.settings import InvarianceSettings
from dpo_eval.steps import analysis

with step_log(snakemake.log[0]):
    analysis.invariance(InvarianceSettings.from_params(snakemake.params.settings),
                        snakemake.input.codebook, snakemake.input.responses, snakemake.output)

from dpo_eval.core.io import step_log
from dpo_eval.core.settings import InvarianceSettings
from dpo_eval.steps import analysis_rules

with step_log(snakemake.log[0]):
    analysis_rules.invariance(InvarianceSettings.from_params(snakemake.params.settings),
                        snakemake.input.codebook, snakemake.input.responses, snakemake.output)

from dpo_eval.core.io import step_log
from dpo_eval.core.settings import CombinedModelSettings
from dpo_eval.steps import analysis_rules

with step_log(snakemake.log[0]):
    analysis_rules.fit_combined(CombinedModelSettings.from_params(snakemake.params.settings),
                          snakemake.input.scores, snakemake.output[0])

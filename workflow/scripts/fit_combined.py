from dpo_eval.io import step_log
from dpo_eval.settings import CombinedModelSettings
from dpo_eval.steps import analysis

with step_log(snakemake.log[0]):
    analysis.fit_combined(CombinedModelSettings.from_params(snakemake.params.settings),
                          snakemake.input.scores, snakemake.output[0])

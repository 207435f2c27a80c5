from dpo_eval.core.io import step_log
from dpo_eval.core.settings import ScoreSettings
from dpo_eval.steps import analysis_rules

with step_log(snakemake.log[0]):
    analysis_rules.score(ScoreSettings.from_params(snakemake.params.settings), snakemake.input.codebook,
                   snakemake.input.responses, snakemake.input.flow_waves, snakemake.output)

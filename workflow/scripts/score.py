from dpo_eval.io import step_log
from dpo_eval.settings import ScoreSettings
from dpo_eval.steps import analysis

with step_log(snakemake.log[0]):
    analysis.score(ScoreSettings.from_params(snakemake.params.settings), snakemake.input.codebook,
                   snakemake.input.responses, snakemake.input.flow_waves, snakemake.output)

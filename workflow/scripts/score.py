from dpo_eval import pipeline
from dpo_eval.io import step_log

with step_log(snakemake.log[0]):
    pipeline.score(snakemake.config, snakemake.input.responses, snakemake.input.flow_waves,
                   snakemake.output)

from dpo_eval import pipeline
from dpo_eval.io import step_log

with step_log(snakemake.log[0]):
    pipeline.fit_domain(snakemake.config, snakemake.input.scores, snakemake.wildcards.domain,
                        snakemake.output)

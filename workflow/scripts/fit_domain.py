from dpo_eval.io import step_log
from dpo_eval.settings import DomainModelSettings
from dpo_eval.steps import analysis

with step_log(snakemake.log[0]):
    analysis.fit_domain(DomainModelSettings.from_params(snakemake.params.settings),
                        snakemake.input.scores, snakemake.wildcards.domain, snakemake.output)

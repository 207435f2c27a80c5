from dpo_eval.core.io import step_log
from dpo_eval.core.settings import DomainModelSettings
from dpo_eval.steps import analysis_rules

with step_log(snakemake.log[0]):
    analysis_rules.fit_domain(DomainModelSettings.from_params(snakemake.params.settings),
                        snakemake.input.scores, snakemake.wildcards.domain, snakemake.output)

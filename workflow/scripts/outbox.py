from pathlib import Path

from dpo_eval.core.io import step_log
from dpo_eval.core.settings import OutboxSettings
from dpo_eval.steps import delivery_rules

with step_log(snakemake.log[0]):
    delivery_rules.outbox(OutboxSettings.from_params(snakemake.params.settings),
                  snakemake.input.recipients, snakemake.input.registry,
                  Path(snakemake.input.reports[0]).parent, snakemake.input.template,
                  Path(snakemake.input.strings[0]).parent, snakemake.output[0],
                  provenance=[*snakemake.input.strings, *snakemake.input.provenance],
                  configuration=snakemake.params.configuration)

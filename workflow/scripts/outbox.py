from pathlib import Path

from dpo_eval.io import step_log
from dpo_eval.settings import OutboxSettings
from dpo_eval.steps import outbox

with step_log(snakemake.log[0]):
    outbox.outbox(OutboxSettings.from_params(snakemake.params.settings),
                  snakemake.input.recipients, snakemake.input.registry,
                  Path(snakemake.input.reports[0]).parent, snakemake.input.template,
                  Path(snakemake.input.strings[0]).parent, snakemake.output[0],
                  provenance=[*snakemake.input.strings, *snakemake.input.provenance],
                  configuration=snakemake.params.configuration)

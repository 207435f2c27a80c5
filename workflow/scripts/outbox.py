from pathlib import Path

from dpo_eval.delivery import write_outbox
from dpo_eval.io import step_log

with step_log(snakemake.log[0]):
    write_outbox(snakemake.config, snakemake.input.recipients, snakemake.input.registry,
                 Path(snakemake.input.reports[0]).parent, snakemake.input.template,
                 Path(snakemake.input.strings[0]).parent,
                 Path(snakemake.output.manifest).parent, snakemake.output.manifest,
                 provenance=[*snakemake.input.strings, *snakemake.input.provenance], project=Path.cwd())

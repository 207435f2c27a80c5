from pathlib import Path

from dpo_eval.core.io import step_log
from dpo_eval.steps import reports_rules

with step_log(snakemake.log[0]):
    reports_rules.reproduction_package(Path(snakemake.scriptdir).resolve().parents[1],
                                 snakemake.input.data, snakemake.input.published,
                                 snakemake.output[0], snakemake.params.min_cell)

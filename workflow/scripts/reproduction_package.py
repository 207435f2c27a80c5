from pathlib import Path

from dpo_eval.io import step_log
from dpo_eval.package import build_package

with step_log(snakemake.log[0]):
    build_package(Path(snakemake.scriptdir).resolve().parents[1], snakemake.input.data,
                  snakemake.input.published, snakemake.output[0], snakemake.config["reports"]["min_cell"])

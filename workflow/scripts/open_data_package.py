from dpo_eval.io import step_log
from dpo_eval.package import build_open_package

with step_log(snakemake.log[0]):
    build_open_package(snakemake.input.responses, snakemake.config["reports"]["min_cell"], snakemake.output[0])

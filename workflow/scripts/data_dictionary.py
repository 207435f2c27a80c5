from dpo_eval.dictionary import build_dictionary
from dpo_eval.io import step_log, write_outputs

with step_log(snakemake.log[0]):
    write_outputs({snakemake.output[0]: build_dictionary(snakemake.input.tables)})

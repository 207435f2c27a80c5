import pandas as pd

from dpo_eval.io import read_csv, step_log, write_outputs
from dpo_eval.power import design_from_config, power_table

with step_log(snakemake.log[0]):
    replicates = pd.concat([read_csv(path) for path in snakemake.input.batches], ignore_index=True)
    table = power_table(replicates, design_from_config(snakemake.params.design))
    write_outputs({snakemake.output[0]: table})

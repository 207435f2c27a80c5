from dpo_eval.core.io import step_log, write_outputs
from dpo_eval.simulation_studies.power import design_from_config, power_table, read_replicates

with step_log(snakemake.log[0]):
    replicates = read_replicates(snakemake.input.batches)
    table = power_table(replicates, design_from_config(snakemake.params.design))
    write_outputs({snakemake.output[0]: table})

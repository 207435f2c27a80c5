from dpo_eval.core.io import step_log, write_outputs
from dpo_eval.simulation_studies.power import design_from_config, power_batch

with step_log(snakemake.log[0]):
    table = power_batch(design_from_config(snakemake.params.design),
                        int(snakemake.wildcards.schools), snakemake.params.replicates,
                        snakemake.params.seed)
    write_outputs({snakemake.output[0]: table})

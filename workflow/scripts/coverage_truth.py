from dpo_eval.core.io import step_log, write_outputs
from dpo_eval.simulation_studies.coverage import condition_truth

with step_log(snakemake.log[0]):
    truth = condition_truth(snakemake.params.effect_scale, snakemake.params.first_seed,
                            snakemake.input.codebook, snakemake.params.draws)
    write_outputs({snakemake.output[0]: truth})

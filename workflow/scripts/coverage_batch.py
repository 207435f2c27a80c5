from dpo_eval.core.io import step_log, write_outputs
from dpo_eval.simulation_studies.coverage import load_pipeline_config, replicate_batch

with step_log(snakemake.log[0]):
    table = replicate_batch(snakemake.wildcards.condition, snakemake.params.effect_scale,
                            snakemake.params.seeds, load_pipeline_config(snakemake.input.config),
                            snakemake.input.codebook, snakemake.params.contamination)
    write_outputs({snakemake.output[0]: table})

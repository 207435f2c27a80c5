from dpo_eval.core.io import step_log
from dpo_eval.simulation_studies.coverage import write_coverage_table

with step_log(snakemake.log[0]):
    write_coverage_table(snakemake.input.batches, snakemake.input.truths, snakemake.output.table,
                         snakemake.output.markdown)

from dpo_eval.core.io import step_log
from dpo_eval.core.settings import DisclosureSettings
from dpo_eval.steps import reports_rules

with step_log(snakemake.log[0]):
    reports_rules.disclosure_control(DisclosureSettings.from_params(snakemake.params.settings),
                               {"scores": snakemake.input.scores, "needs": snakemake.input.needs,
                                "responses": snakemake.input.responses,
                                "institutions": snakemake.input.institutions, "tables": list(snakemake.input.tables)},
                               {"control": snakemake.output.control, "manifest": snakemake.output.manifest})

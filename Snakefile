# DPO program evaluation pipeline: raw survey exports -> pseudonymised data -> scores ->
# mixed-effects models -> PDF reports -> delivery. See README.md; the configuration is
# documented in config/README.md and validated against workflow/schemas/config.schema.yaml.
# `--config reproduce=True` rebuilds the tables and evaluation reports from the pseudonymised
# data of a reproduction package (no raw data, no institution reports, no delivery).

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


if not REPRODUCE:

    include: "workflow/rules/ingest.smk"


include: "workflow/rules/analysis.smk"
include: "workflow/rules/reports.smk"


if not REPRODUCE:

    include: "workflow/rules/delivery.smk"


rule all:
    input:
        TARGETS,
    default_target: True

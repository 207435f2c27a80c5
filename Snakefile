# DPO program evaluation pipeline: raw survey exports -> pseudonymised data -> scores ->
# mixed-effects models -> PDF reports. See README.md; the configuration is documented in
# config/README.md and validated against workflow/schemas/config.schema.yaml.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/reports.smk"
include: "workflow/rules/delivery.smk"


rule all:
    input:
        expand("results/reports/evaluation.{lang}.pdf", lang=LANGUAGES),
        expand("results/reports/institutions/{institution}.pdf", institution=SCHOOLS),
        "results/outbox/manifest.csv",
        "results/data_dictionary.csv",
    default_target: True

# DPO program evaluation pipeline: raw survey exports -> pseudonymised data -> scores ->
# mixed-effects models -> PDF reports -> delivery. See README.md; the configuration is
# documented in config/README.md and validated against workflow/schemas/config.schema.yaml.
# `--config reproduce=True` rebuilds the tables and evaluation reports from the pseudonymised
# data of a reproduction package (no raw data, no institution reports, no delivery).

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from dpo_eval.core.config import load_yaml
from dpo_eval.core.errors import exit_on_user_error

# Snakemake reports a YAML syntax error without its place: read the file first to name the line.
if Path("config/config.yaml").exists():
    with exit_on_user_error():
        load_yaml("config/config.yaml")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


if not REPRODUCE:

    include: "workflow/rules/ingest.smk"


include: "workflow/rules/analysis.smk"
include: "workflow/rules/reports.smk"


if not REPRODUCE:

    include: "workflow/rules/delivery.smk"


localrules:
    all,


rule all:
    input:
        TARGETS,
    default_target: True

import functools
from pathlib import Path


include: "package_path.smk"


from dpo_eval.codebook import load_codebook
from dpo_eval.config import validate_config
from dpo_eval.delivery import outbox_config_digest
from dpo_eval.settings import (
    CombinedModelSettings,
    DomainModelSettings,
    IngestSettings,
    InstitutionReportSettings,
    NeedsIngestSettings,
    OutboxSettings,
    ReportBatchSettings,
    ReportSettings,
    ScoreSettings,
    computed_with,
)
from dpo_eval.study import STAKEHOLDER_GROUPS
from dpo_eval.errors import exit_on_user_error

# A user error while the DAG is built prints its message once and exits (no traceback). The
# codebook is checked here too: otherwise every step reading it would print the same message.
with exit_on_user_error():
    validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
                    source="config/config.yaml")
    load_codebook(config["codebook"])

REPRODUCE = bool(config.get("reproduce", False))
LANGUAGES = config["reports"]["languages"]
DOMAINS = config["analysis"]["domains"]
PACKAGE = Path(PACKAGE_ROOT) / "dpo_eval"
SCRIPTS_DIR = Path(workflow.basedir) / "workflow" / "scripts"


include: "code_inputs.smk"


from dpo_eval.study import (
    ANALYSIS_TABLES,
    AUDIT_TABLES,
    CLEAN_TABLES,
    EVALUATION_TABLES,
    INSTITUTION_TABLES,
)

FONTS = sorted(str(path) for path in Path("reports/fonts").glob("*.ttf"))


@functools.cache
def registry():
    """The institutions registry, read once per DAG build by the same reader as the survey
    exports (any encoding and separator they accept)."""
    from dpo_eval.ingest import load_registry

    with exit_on_user_error():
        return load_registry(config["registry"])


def registry_ids():
    """Ids of the registry's institutions (schools, the university and the IRO)."""
    return [iid for iid, type_ in zip(registry()["id"], registry()["type"]) if type_ in STAKEHOLDER_GROUPS]


@functools.cache
def school_batches():
    """The schools of the registry in the batches of the school-report jobs."""
    from dpo_eval.report_batches import school_batches as batches

    schools = [iid for iid, type_ in zip(registry()["id"], registry()["type"]) if type_ == "school"]
    return batches(schools, ReportBatchSettings.from_config(config).batch_size)


def validate_recipients():
    """Recipients, validated when the DAG is built (addresses, languages, report kinds, ids)."""
    from dpo_eval.delivery import load_recipients

    with exit_on_user_error():
        load_recipients(config["delivery"]["recipients"], set(registry_ids()))


if not REPRODUCE:
    validate_recipients()


def all_package_files():
    """Every module and data file of the package: the reports print their joint digest."""
    return sorted(project_path(p) for p in PACKAGE.rglob("*")
                  if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts)


def wave_files():
    return [file for wave in config["waves"].values() for file in wave["files"]]


def raw_inputs():
    """Every raw file the study reads, plus the codebook and the registry."""
    return [*wave_files(), *config["needs"]["files"], config["registry"], config["codebook"]]


def outbox_provenance():
    """Inputs the outbox is a product of through the reports, digested into
    results/outbox/inputs.csv with the outbox's own inputs: `send` refuses the outbox when one of
    them has changed since (e.g. after a rerun that failed)."""
    templates = sorted(str(p) for p in Path("reports/templates").glob("*.html"))
    return [*raw_inputs(), *templates]

# Every table the pipeline writes (the registry is dpo_eval.study), all described in the data
# dictionary (src/dpo_eval/data_dictionary.yaml).
ANALYSIS_OUTPUTS = [f"results/tables/{name}.csv" for name in ANALYSIS_TABLES]
DICTIONARY_TABLES = [
    *(f"results/clean/{name}.csv" for name in CLEAN_TABLES),
    *ANALYSIS_OUTPUTS,
    *(f"results/audit/{name}.csv" for name in AUDIT_TABLES),
]

# What a reproduction package rebuilds and checks: every analysis table and the evaluation reports.
REPRODUCED = [*ANALYSIS_OUTPUTS, *(f"results/reports/evaluation.{lang}.pdf" for lang in LANGUAGES)]
# The pseudonymised analysis data a reproduction package carries: what the rebuild reads, and
# nothing else (not respondents.csv, with its submission times and response times).
PACKAGE_DATA = [
    f"results/clean/{name}.csv"
    for name in ("responses", "needs", "needs_formats", "flow_waves", "institutions", "input_manifest")
] + ["results/clean/pseudonymisation.json"]
TARGETS = REPRODUCED if REPRODUCE else [
    *REPRODUCED,
    "results/reports/institutions",
    "results/outbox",
    "results/data_dictionary.csv",
    "results/reproduction_package.zip",
    "results/open_data_package.zip",
]

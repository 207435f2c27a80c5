import functools
from pathlib import Path


include: "package_path.smk"


from dpo_eval.core.codebook import load_codebook
from dpo_eval.core.config import min_cell_warning, validate_config
from dpo_eval.delivery.outbox import outbox_config_digest
from dpo_eval.core.settings import (
    CombinedModelSettings,
    DisclosureSettings,
    DomainModelSettings,
    IngestSettings,
    InvarianceSettings,
    InstitutionReportSettings,
    NeedsIngestSettings,
    OutboxSettings,
    ReportBatchSettings,
    ReportSettings,
    ScoreSettings,
    computed_with,
)
from dpo_eval.core.errors import exit_on_user_error

# A user error while the DAG is built prints its message once and exits (no traceback). The
# codebook is checked here too: otherwise every step reading it would print the same message.
with exit_on_user_error():
    validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
                    source="config/config.yaml")
    load_codebook(config["codebook"])
if min_cell_warning(config["reports"]["min_cell"]):
    print(min_cell_warning(config["reports"]["min_cell"]), file=sys.stderr)

REPRODUCE = bool(config.get("reproduce", False))
LANGUAGES = config["reports"]["languages"]
DOMAINS = config["analysis"]["domains"]
PACKAGE = Path(PACKAGE_ROOT) / "dpo_eval"
SCRIPTS_DIR = Path(workflow.basedir) / "workflow" / "scripts"


include: "code_inputs.smk"


from dpo_eval.core.study import (
    ANALYSIS_TABLES,
    AUDIT_TABLES,
    CLEAN_TABLES,
    EVALUATION_TABLES,
    INSTITUTION_TABLES,
    REPORT_TABLES,
)

FONTS = sorted(str(path) for path in Path("reports/fonts").glob("*.ttf"))


@functools.cache
def registry():
    """The institutions registry, read once per DAG build by the one reader every step uses
    (dpo_eval.core.registry; any encoding and separator the survey readers accept)."""
    from dpo_eval.core.registry import load_registry

    with exit_on_user_error():
        return load_registry(config["registry"])


@functools.cache
def school_batches():
    """The schools of the registry in the batches of the school-report jobs."""
    from dpo_eval.reporting.report_batches import school_batches as batches

    schools = [iid for iid, type_ in zip(registry()["id"], registry()["type"]) if type_ == "school"]
    return batches(schools, ReportBatchSettings.from_config(config).batch_size)


def validate_registry_and_recipients():
    """The institutions registry and the recipients file, checked when the DAG is built:
    ids and names once each, required cells, known values, addresses, no control characters,
    and a recipient for every school that is not listed in delivery.no_recipient."""
    from dpo_eval.core.registry import check_recipient_coverage, load_recipients

    recipients_path = config["delivery"]["recipients"]
    with exit_on_user_error():
        recipients = load_recipients(recipients_path, set(registry()["id"]))
        check_recipient_coverage(registry(), recipients,
                                 OutboxSettings.from_config(config).no_recipient, recipients_path)


if not REPRODUCE:
    validate_registry_and_recipients()


# The exit status of the last `send` job (a log: Snakemake deletes it before the job runs).
SEND_STATUS = "logs/send.status"


def exit_with_send_status():
    """After a failed run: exit with the status the `send` job recorded (3 stale outbox, 4
    changed reports, ...), if it ran and failed; otherwise leave Snakemake's own status."""
    path = Path(SEND_STATUS)
    if not path.is_file():
        return
    status = path.read_text(encoding="utf-8").strip()
    path.unlink()
    if status.isdigit() and int(status):
        raise SystemExit(int(status))


def all_package_files():
    """Every module and data file of the package: the reports print their joint digest."""
    from dpo_eval.reporting.provenance import package_files

    return [project_path(path) for path in package_files(PACKAGE)]


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

# Every table the pipeline writes (the registry is dpo_eval.core.study), all described in the data
# dictionary (src/dpo_eval/core/data_dictionary.yaml).
ANALYSIS_OUTPUTS = [f"results/tables/{name}.csv" for name in ANALYSIS_TABLES]
DICTIONARY_TABLES = [
    *(f"results/clean/{name}.csv" for name in CLEAN_TABLES),
    *ANALYSIS_OUTPUTS,
    *(f"results/audit/{name}.csv" for name in AUDIT_TABLES),
    *(f"results/reports/{name}.csv" for name in REPORT_TABLES),
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

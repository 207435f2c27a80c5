import os
import sys
from pathlib import Path

# The rules run the package in this repository (whose modules they declare as inputs), also
# where it is not installed, e.g. inside a per-rule conda environment.
PACKAGE_ROOT = str(Path(workflow.basedir) / "src")
sys.path.insert(0, PACKAGE_ROOT)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
)

from dpo_eval.config import validate_config


validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
                source="config/config.yaml")

REPRODUCE = bool(config.get("reproduce", False))
LANGUAGES = config["reports"]["languages"]
DOMAINS = config["analysis"]["domains"]
PACKAGE = Path(PACKAGE_ROOT) / "dpo_eval"


from dpo_eval.report import EVALUATION_TABLES, INSTITUTION_TABLES

FONTS = sorted(str(path) for path in Path("reports/fonts").glob("*.ttf"))


def registry_ids(kind):
    """Ids of the registry's institutions of one type (schools get a report each)."""
    import csv

    with open(config["registry"], encoding="utf-8-sig", newline="") as handle:
        return [row["id"] for row in csv.DictReader(handle) if row["type"] == kind]


SCHOOLS = [] if REPRODUCE else registry_ids("school")


def recipient_ids():
    """Recipients, validated when the DAG is built (addresses, languages, report kinds, ids)."""
    from dpo_eval.delivery import load_recipients

    every = set(registry_ids("school") + registry_ids("university") + registry_ids("iro"))
    return [r.institution for r in load_recipients(config["delivery"]["recipients"], every)]


RECIPIENT_IDS = [] if REPRODUCE else recipient_ids()


def package_modules(*names):
    """Package modules that a step imports, declared as inputs so that an edit reruns it."""
    return [str(PACKAGE / f"{name}.py") for name in names]


def all_package_files():
    """Every module and data file of the package: the reports print their joint digest."""
    return sorted(str(p) for p in PACKAGE.iterdir() if p.suffix in (".py", ".yaml"))


def wave_files():
    return [file for wave in config["waves"].values() for file in wave["files"]]


def raw_inputs():
    """Every raw file the study reads, plus the codebook and the registry."""
    return [*wave_files(), *config["needs"]["files"], config["registry"], config["codebook"]]


def outbox_provenance():
    """What the outbox is a product of, digested into results/outbox/inputs.csv: the raw data,
    the report templates and the package's code (a stale outbox is refused by `send`)."""
    templates = sorted(str(p) for p in Path("reports/templates").glob("*") if p.is_file())
    return [*raw_inputs(), *templates, *all_package_files()]

# Every table described in the data dictionary (src/dpo_eval/data_dictionary.yaml).
DICTIONARY_TABLES = [
    *(f"results/clean/{name}.csv" for name in
      ("responses", "respondents", "scores", "needs", "needs_formats", "flow_waves",
       "institutions", "input_manifest")),
    *(f"results/tables/{name}.csv" for name in
      ("flow", "descriptives", "reliability", "needs", "needs_distribution", "needs_tests",
       "needs_formats", "did", "fixed_effects", "variance_components", "model_checks",
       "effect_sizes", "response_shift", "sensitivity", "qq", "sample", "municipalities",
       "score_benchmarks", "needs_benchmarks")),
    *(f"results/audit/{name}.csv" for name in ("match_audit", "duplicates", "invalid_values")),
]

# What a reproduction package rebuilds and checks: every analysis table and the evaluation reports.
REPRODUCED = [
    *(f"results/tables/{name}.csv" for name in
      ("flow", "descriptives", "reliability", "needs", "needs_distribution", "needs_tests",
       "needs_formats", "did", "fixed_effects", "variance_components", "model_checks",
       "effect_sizes", "response_shift", "sensitivity", "qq", "sample", "municipalities",
       "score_benchmarks", "needs_benchmarks")),
    *(f"results/reports/evaluation.{lang}.pdf" for lang in LANGUAGES),
]
# The pseudonymised analysis data a reproduction package carries: what the rebuild reads, and
# nothing else (not respondents.csv, with its submission times and response times).
PACKAGE_DATA = [
    f"results/clean/{name}.csv"
    for name in ("responses", "needs", "needs_formats", "flow_waves", "institutions", "input_manifest")
] + ["results/clean/pseudonymisation.json"]
TARGETS = REPRODUCED if REPRODUCE else [
    *REPRODUCED,
    *(f"results/reports/institutions/{school}.pdf" for school in SCHOOLS),
    "results/outbox/manifest.csv",
    "results/data_dictionary.csv",
    "results/reproduction_package.zip",
    "results/open_data_package.zip",
]

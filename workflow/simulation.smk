# Simulation studies of the pipeline's statistics, a second entry point next to the Snakefile
# (see README.md, "Simulation study" and "Planning a study"):
#
#   snakemake --cores 4 -s workflow/simulation.smk              # target `simulation`: coverage
#   snakemake --cores 4 -s workflow/simulation.smk power        # power analysis for planning
#
# Settings: config/simulation.yaml (coverage) and config/power.yaml (the planned design); each
# job is one batch of replicates of one condition or number of schools, so that a cluster
# (`--profile workflow/profiles/slurm`) runs them side by side.

from pathlib import Path

import yaml


include: "rules/package_path.smk"


REPO = Path(workflow.basedir).parent

from dpo_eval.core.config import validate_config
from dpo_eval.core.settings import ReportAuthorSettings
from dpo_eval.simulation_studies.coverage import batch_seeds, merge_settings, n_batches

# The settings files, with what --configfile (or --config) gives merged into them key by key, so
# that a file with `coverage: {studies: 40}` keeps the other coverage settings.
SETTINGS_FILES = ["config/simulation.yaml", "config/power.yaml"]
settings = {}
for path in SETTINGS_FILES:
    with open(path, encoding="utf-8") as stream:
        settings = merge_settings(settings, yaml.safe_load(stream))
config.update(merge_settings(settings, config))
validate_config(config, REPO / "workflow/schemas/simulation.schema.yaml",
                source=" and ".join(SETTINGS_FILES) + " with the command line's --config")

PACKAGE = Path(PACKAGE_ROOT) / "dpo_eval"
PIPELINE_CONFIG = "config/config.yaml"
with open(PIPELINE_CONFIG, encoding="utf-8") as stream:
    PIPELINE = yaml.safe_load(stream)
CODEBOOK = PIPELINE["codebook"]
# The organisations behind the reports (the power report's Author), from the pipeline's config.
REPORT_AUTHORS = ReportAuthorSettings.from_config(PIPELINE).as_params()
COVERAGE = config["coverage"]
CONDITIONS = COVERAGE["conditions"]
COVERAGE_BATCHES = range(n_batches(COVERAGE["studies"], COVERAGE["batch_size"]))
POWER = config["power"]
POWER_GRID = POWER["schools_per_arm"]
POWER_BATCHES = range(n_batches(POWER["replicates"], POWER["batch_size"]))
LANGUAGES = ["ru", "en"]


SCRIPTS_DIR = Path(workflow.basedir) / "scripts"


include: "rules/code_inputs.smk"


# The aggregations and reports take seconds: they run where Snakemake runs, not as cluster jobs.
localrules:
    simulation,
    power,
    coverage_table,
    power_table,
    power_report,


wildcard_constraints:
    condition="|".join(CONDITIONS),
    batch=r"\d+",
    schools=r"\d+",
    lang="|".join(LANGUAGES),


rule simulation:
    """The coverage and type I error table of README.md, rebuilt from the replicates."""
    input:
        "results/simulation/coverage.csv",
        "results/simulation/coverage.md",
    default_target: True


rule power:
    """The power analysis: table, power curves and the short report in both languages."""
    input:
        "results/power/power.csv",
        expand("results/power/power_curve.{lang}.{ext}", lang=LANGUAGES, ext=["svg", "png"]),
        expand("results/power/power.{lang}.pdf", lang=LANGUAGES),


rule coverage_batch:
    """Generate, ingest and analyse one batch of studies of one condition."""
    input:
        config=PIPELINE_CONFIG,
        codebook=CODEBOOK,
        code=script_code("coverage_batch"),
    output:
        "results/simulation/coverage/{condition}/batch_{batch}.csv",
    params:
        seeds=lambda wildcards: batch_seeds(COVERAGE["first_seed"], COVERAGE["studies"],
                                            COVERAGE["batch_size"], int(wildcards.batch)),
        effect_scale=lambda wildcards: CONDITIONS[wildcards.condition],
        contamination=COVERAGE["contamination"],
    threads: 1
    resources:
        mem_mb=1000,
        # About 3 s per study on one core: 10 s each leaves room for a slow node.
        runtime=max(10, COVERAGE["batch_size"] // 6),
    conda:
        "../environment.yml"
    log:
        "logs/simulation/coverage/{condition}/batch_{batch}.log",
    script:
        "scripts/coverage_batch.py"


rule coverage_truth:
    """The true effects of a condition on the scale-score metric (the generator's Monte Carlo)."""
    input:
        codebook=CODEBOOK,
        code=script_code("coverage_truth"),
    output:
        "results/simulation/coverage/{condition}/truth.json",
    params:
        effect_scale=lambda wildcards: CONDITIONS[wildcards.condition],
        first_seed=COVERAGE["first_seed"],
        draws=COVERAGE["truth_draws"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../environment.yml"
    log:
        "logs/simulation/coverage/{condition}/truth.log",
    script:
        "scripts/coverage_truth.py"


rule coverage_table:
    """Coverage, rejection rates and fit problems per condition and domain."""
    input:
        batches=expand("results/simulation/coverage/{condition}/batch_{batch}.csv",
                       condition=CONDITIONS, batch=COVERAGE_BATCHES),
        truths=expand("results/simulation/coverage/{condition}/truth.json", condition=CONDITIONS),
        code=script_code("coverage_table"),
    output:
        table="results/simulation/coverage.csv",
        markdown="results/simulation/coverage.md",
    conda:
        "../environment.yml"
    log:
        "logs/simulation/coverage_table.log",
    script:
        "scripts/coverage_table.py"


rule power_batch:
    """Simulate and fit one batch of replicates of the planned design at one number of schools."""
    input:
        code=script_code("power_batch"),
    output:
        "results/power/replicates/{schools}_per_arm/batch_{batch}.csv",
    params:
        design=POWER["design"],
        seed=POWER["seed"],
        replicates=lambda wildcards: batch_seeds(0, POWER["replicates"], POWER["batch_size"],
                                                 int(wildcards.batch)),
    threads: 1
    resources:
        mem_mb=1000,
        # Under 1 s per replicate of 50 schools per arm on one core: 3 s each leaves room.
        runtime=max(10, POWER["batch_size"] // 20),
    conda:
        "../environment.yml"
    log:
        "logs/power/{schools}_per_arm/batch_{batch}.log",
    script:
        "scripts/power_batch.py"


rule power_table:
    """Power per number of schools and domain with Monte Carlo intervals and the analytic
    approximation."""
    input:
        batches=expand("results/power/replicates/{schools}_per_arm/batch_{batch}.csv",
                       schools=POWER_GRID, batch=POWER_BATCHES),
        code=script_code("power_table"),
    output:
        "results/power/power.csv",
    params:
        design=POWER["design"],
    conda:
        "../environment.yml"
    log:
        "logs/power/power_table.log",
    script:
        "scripts/power_table.py"


rule power_report:
    """The power curve (SVG for documents, PNG for slides) and the short report, one language."""
    input:
        table="results/power/power.csv",
        codebook=CODEBOOK,
        template="reports/templates/power.html",
        base="reports/templates/base.html",
        strings="reports/templates/power.yaml",
        i18n="reports/i18n",
        abbreviations="reports/i18n/abbreviations.yaml",
        fonts=sorted(str(path) for path in Path("reports/fonts").glob("*.ttf")),
        code=script_code("power_report"),
    output:
        pdf="results/power/power.{lang}.pdf",
        svg="results/power/power_curve.{lang}.svg",
        png="results/power/power_curve.{lang}.png",
    params:
        settings=POWER,
        reports=REPORT_AUTHORS,
    conda:
        "../environment.yml"
    log:
        "logs/power/power_report.{lang}.log",
    script:
        "scripts/power_report.py"

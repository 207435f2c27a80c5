# Small steps run where Snakemake runs, not as cluster jobs (see README.md,
# "Running on a cluster").
localrules:
    institution_reports,
    data_dictionary,
    reproduction_package,
    open_data_package,


rule disclosure_control:
    """Every number of every report (evaluation report, school reports), controlled as one
    release before anything is rendered: no published group below reports.min_cell, and no two
    nested groups differing by 1 to min_cell - 1 people (secondary suppression, repeated until
    the whole release passes); writes the manifest results/reports/released_cells.csv."""
    input:
        scores="results/clean/scores.csv",
        needs="results/clean/needs.csv",
        responses="results/clean/responses.csv",
        institutions="results/clean/institutions.csv",
        tables=expand("results/tables/{name}.csv", name=EVALUATION_TABLES),
        code=script_code("disclosure_control"),
    params:
        settings=DisclosureSettings.from_config(config).as_params(),
    output:
        control="results/audit/disclosure_control.csv",
        manifest="results/reports/released_cells.csv",
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../environment.yml"
    log:
        "logs/disclosure_control.log",
    script:
        "../scripts/disclosure_control.py"


rule evaluation_report:
    """The full evaluation report in one language."""
    input:
        tables=expand("results/tables/{name}.csv", name=EVALUATION_TABLES),
        control="results/audit/disclosure_control.csv",
        institutions="results/clean/institutions.csv",
        manifest="results/clean/input_manifest.csv",
        pseudonymisation="results/clean/pseudonymisation.json",
        codebook=config["codebook"],
        template="reports/templates/evaluation.html",
        base="reports/templates/base.html",
        i18n="reports/i18n",
        strings="reports/i18n/{lang}.yaml",
        fonts=FONTS,
        lock="requirements.lock",
        code=all_package_files(),
    params:
        settings=ReportSettings.from_config(config).as_params(),
        computed_with=computed_with(config),
    output:
        report("results/reports/evaluation.{lang}.pdf", caption="../report/evaluation.rst",
               category="Reports"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    conda:
        "../../environment.yml"
    log:
        "logs/evaluation_report/{lang}.log",
    wildcard_constraints:
        lang="|".join(LANGUAGES),
    script:
        "../scripts/evaluation_report.py"


rule institution_report_batch:
    """One batch of the school reports (reports.batch_size schools, see school_batches), each in
    the language of the registry, aggregates only, rendered in one process pool (fonts and
    templates loaded once per worker), with the batch's rows of index.csv. A cluster runs the
    batches as parallel jobs."""
    input:
        tables=expand("results/tables/{name}.csv", name=INSTITUTION_TABLES),
        control="results/audit/disclosure_control.csv",
        institutions="results/clean/institutions.csv",
        pseudonymisation="results/clean/pseudonymisation.json",
        codebook=config["codebook"],
        template="reports/templates/institution.html",
        base="reports/templates/base.html",
        i18n="reports/i18n",
        strings=expand("reports/i18n/{lang}.yaml", lang=["ru", "en"]),
        fonts=FONTS,
        code=script_code("institution_report_batch"),
    params:
        settings=InstitutionReportSettings.from_config(config).as_params(),
        schools=lambda wildcards: school_batches()[int(wildcards.batch)],
    output:
        temp(directory("results/reports/batches/{batch}")),
    threads: 4
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../../environment.yml"
    log:
        "logs/institution_report_batch/{batch}.log",
    wildcard_constraints:
        batch=r"\d+",
    script:
        "../scripts/institution_report_batch.py"


rule institution_reports:
    """Every school's report, gathered from the batches, and index.csv listing each report's
    title and whether it carries a score figure of the school's team or municipality. One
    directory output: Snakemake empties it before the job, so a school withdrawn from the
    registry keeps no report."""
    input:
        # A function: the registry is read only when the school reports are built (a reproduction
        # package has no registry and builds no school report).
        batches=lambda wildcards: expand("results/reports/batches/{batch}", batch=range(len(school_batches()))),
        code=script_code("institution_reports"),
    output:
        directory("results/reports/institutions"),
    conda:
        "../../environment.yml"
    log:
        "logs/institution_reports.log",
    script:
        "../scripts/institution_reports.py"


rule data_dictionary:
    """The meaning of every column of every output table, checked against the tables."""
    input:
        tables=DICTIONARY_TABLES,
        dictionary=project_path(PACKAGE / "core" / "data_dictionary.yaml"),
        code=script_code("data_dictionary"),
    output:
        "results/data_dictionary.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/data_dictionary.log",
    script:
        "../scripts/data_dictionary.py"


rule reproduction_package:
    """Pseudonymised analysis data, configuration, code, lock file, instructions and the
    checksums of the published tables and evaluation reports, in one zip (controlled access:
    REPRODUCE.md states the k-anonymity it achieves)."""
    input:
        data=PACKAGE_DATA,
        published=REPRODUCED,
        code=script_code("reproduction_package"),
    params:
        min_cell=config["reports"]["min_cell"],
    output:
        "results/reproduction_package.zip",
    conda:
        "../../environment.yml"
    log:
        "logs/reproduction_package.log",
    script:
        "../scripts/reproduction_package.py"


rule open_data_package:
    """The item responses for open publication: years in management in bands, no place or
    time, local suppression until every combination of institution, role, years band and
    cohort has at least reports.min_cell participants (OPEN_DATA.md states the k achieved)."""
    input:
        responses="results/clean/responses.csv",
        code=script_code("open_data_package"),
    params:
        min_cell=config["reports"]["min_cell"],
    output:
        "results/open_data_package.zip",
    conda:
        "../../environment.yml"
    log:
        "logs/open_data_package.log",
    script:
        "../scripts/open_data_package.py"

rule evaluation_report:
    """The full evaluation report in one language."""
    input:
        did="results/tables/did.csv",
        flow="results/tables/flow.csv",
        descriptives="results/tables/descriptives.csv",
        template="reports/templates/evaluation.html",
        base="reports/templates/base.html",
        i18n="reports/i18n",
        strings="reports/i18n/{lang}.yaml",
        fonts=list(map(str, Path("reports/fonts").glob("*.ttf"))),
        lock="requirements.lock",
        raw=raw_inputs(),
        code=package_modules("report", "io"),
    output:
        "results/reports/evaluation.{lang}.pdf",
    conda:
        "../../environment.yml"
    log:
        "logs/evaluation_report/{lang}.log",
    wildcard_constraints:
        lang="|".join(LANGUAGES),
    script:
        "../scripts/evaluation_report.py"


rule data_dictionary:
    """The meaning of every column of every output table, checked against the tables."""
    input:
        tables=DICTIONARY_TABLES,
        dictionary=str(PACKAGE / "data_dictionary.yaml"),
        code=package_modules("dictionary", "io"),
    output:
        "results/data_dictionary.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/data_dictionary.log",
    script:
        "../scripts/data_dictionary.py"

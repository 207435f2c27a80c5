rule ingest:
    """Read the raw exports, validate and normalise them, match waves, flag careless
    responding and pseudonymise. Personal data never leave this rule."""
    input:
        raw=raw_inputs(),
        code=package_modules("ingest", "readers", "codes", "careless", "pseudonymise",
                             "codebook", "text", "errors", "io", "pipeline"),
    output:
        responses="results/clean/responses.csv",
        respondents="results/clean/respondents.csv",
        needs="results/clean/needs.csv",
        needs_formats="results/clean/needs_formats.csv",
        flow="results/tables/flow.csv",
        match_audit="results/audit/match_audit.csv",
        duplicates="results/audit/duplicates.csv",
        invalid_values="results/audit/invalid_values.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/ingest.log",
    script:
        "../scripts/ingest.py"

# Small steps run where Snakemake runs, not as cluster jobs (see README.md,
# "Running on a cluster").
localrules:
    input_manifest,


rule ingest:
    """Read the competency questionnaires of every wave, validate and normalise them, match
    waves, flag careless responding and pseudonymise. Personal data never leave this rule."""
    input:
        waves=wave_files(),
        registry=config["registry"],
        codebook=config["codebook"],
        code=script_code("ingest"),
    params:
        settings=IngestSettings.from_config(config).as_params(),
    output:
        responses="results/clean/responses.csv",
        respondents="results/clean/respondents.csv",
        flow_waves="results/clean/flow_waves.csv",
        match_audit="results/audit/match_audit.csv",
        duplicates="results/audit/duplicates.csv",
        invalid_values="results/audit/invalid_values.csv",
        institutions="results/clean/institutions.csv",
        pseudonymisation="results/clean/pseudonymisation.json",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    conda:
        "../../environment.yml"
    log:
        "logs/ingest.log",
    script:
        "../scripts/ingest.py"


rule ingest_needs:
    """Read the needs-assessment survey (instrument B) and pseudonymise its respondents."""
    input:
        needs=config["needs"]["files"],
        registry=config["registry"],
        codebook=config["codebook"],
        code=script_code("ingest_needs"),
    params:
        settings=NeedsIngestSettings.from_config(config).as_params(),
    output:
        needs="results/clean/needs.csv",
        needs_formats="results/clean/needs_formats.csv",
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../../environment.yml"
    log:
        "logs/ingest_needs.log",
    script:
        "../scripts/ingest_needs.py"


rule input_manifest:
    """SHA-256 of every input file, for the provenance appendix of the reports."""
    input:
        files=raw_inputs(),
        code=script_code("input_manifest"),
    output:
        "results/clean/input_manifest.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/input_manifest.log",
    script:
        "../scripts/input_manifest.py"

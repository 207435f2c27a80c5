rule outbox:
    """One e-mail per recipient with its report attached, and a manifest of who gets what.
    Nothing is sent here: sending is the separate `send` target."""
    input:
        recipients=config["delivery"]["recipients"],
        registry=config["registry"],
        reports=expand("results/reports/evaluation.{lang}.pdf", lang=LANGUAGES),
        institution_reports="results/reports/institutions",
        template="reports/templates/email.txt",
        strings=expand("reports/i18n/{lang}.yaml", lang=["ru", "en"]),
        code=script_code("outbox"),
    params:
        settings=OutboxSettings.from_config(config).as_params(),
    output:
        # One directory, emptied by Snakemake before the job: no message of a withdrawn
        # recipient survives, so that `send` cannot see one.
        directory("results/outbox"),
    conda:
        "../../environment.yml"
    log:
        "logs/outbox.log",
    script:
        "../scripts/outbox.py"


rule send:
    """Send the outbox over SMTP (never part of the default run): `snakemake --cores 1 send`.
    The ledger (config delivery.ledger) makes a rerun send nothing twice."""
    input:
        outbox="results/outbox",
    conda:
        "../../environment.yml"
    log:
        "logs/send.log",
    shell:
        "python -m dpo_eval.delivery send --manifest {input.outbox}/manifest.csv 2>&1 | tee {log}"

rule outbox:
    """One e-mail per recipient with its report attached, the manifest of who gets what, and
    the digests of every input the outbox was built from (sending refuses a stale outbox).
    Nothing is sent here: sending is the separate `send` target."""
    input:
        recipients=config["delivery"]["recipients"],
        registry=config["registry"],
        reports=expand("results/reports/evaluation.{lang}.pdf", lang=LANGUAGES),
        institution_reports=expand("results/reports/institutions/{school}.pdf", school=SCHOOLS),
        template="reports/templates/email.txt",
        strings=expand("reports/i18n/{lang}.yaml", lang=["ru", "en"]),
        provenance=outbox_provenance(),
        code=package_modules("delivery", "io", "config"),
    output:
        messages=expand("results/outbox/{institution}.eml", institution=RECIPIENT_IDS),
        manifest="results/outbox/manifest.csv",
        inputs="results/outbox/inputs.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/outbox.log",
    script:
        "../scripts/outbox.py"


rule send:
    """Send the outbox over SMTP (never part of the default run): `snakemake --cores 1 send`.
    Runs with Snakemake's own interpreter (a script, not a shell `python`). The ledger (config
    delivery.ledger) makes a rerun send nothing twice; a stale outbox is refused."""
    input:
        manifest="results/outbox/manifest.csv",
        inputs="results/outbox/inputs.csv",
        messages=expand("results/outbox/{institution}.eml", institution=RECIPIENT_IDS),
    conda:
        "../../environment.yml"
    log:
        "logs/send.log",
    script:
        "../scripts/send.py"

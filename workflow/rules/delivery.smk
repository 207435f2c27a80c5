rule outbox:
    """One e-mail per recipient with its report attached, and a manifest of who gets what.
    Nothing is sent here: sending is the separate `send` target."""
    input:
        recipients=config["delivery"]["recipients"],
        registry=config["registry"],
        reports=expand("results/reports/evaluation.{lang}.pdf", lang=LANGUAGES),
        institution_reports=expand("results/reports/institutions/{school}.pdf", school=SCHOOLS),
        template="reports/templates/email.txt",
        strings=expand("reports/i18n/{lang}.yaml", lang=["ru", "en"]),
        code=package_modules("delivery", "io", "steps/delivery"),
    output:
        messages=expand("results/outbox/{institution}.eml", institution=RECIPIENT_IDS),
        manifest="results/outbox/manifest.csv",
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
        manifest="results/outbox/manifest.csv",
        messages=expand("results/outbox/{institution}.eml", institution=RECIPIENT_IDS),
    conda:
        "../../environment.yml"
    log:
        "logs/send.log",
    shell:
        "python -m dpo_eval.delivery send --manifest {input.manifest} 2>&1 | tee {log}"

# Small steps run where Snakemake runs, not as cluster jobs (see README.md,
# "Running on a cluster").
localrules:
    outbox,
    send,


rule outbox:
    """One e-mail per recipient with its report attached, the manifest of who gets what, and
    the digests of the inputs and configuration it was built from (`send` refuses a stale
    outbox). Nothing is sent here: sending is the separate `send` target."""
    input:
        recipients=config["delivery"]["recipients"],
        registry=config["registry"],
        reports=expand("results/reports/evaluation.{lang}.pdf", lang=LANGUAGES),
        institution_reports="results/reports/institutions",
        template="reports/templates/email.txt",
        strings=expand("reports/i18n/{lang}.yaml", lang=["ru", "en"]),
        provenance=outbox_provenance(),
        code=script_code("outbox"),
    params:
        settings=OutboxSettings.from_config(config).as_params(),
        # Every setting except how to send: all of them shape the reports, hence the outbox.
        configuration=outbox_config_digest(config),
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
    Runs with Snakemake's own interpreter (a script, not a shell `python`). The ledger (config
    delivery.ledger) makes a rerun send nothing twice; a stale outbox is refused."""
    input:
        outbox="results/outbox",
        code=script_code("send"),
    conda:
        "../../environment.yml"
    log:
        "logs/send.log",
    script:
        "../scripts/send.py"

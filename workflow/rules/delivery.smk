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
        # One directory, which the step leaves holding this outbox and nothing else (no message
        # of a withdrawn recipient survives, so that `send` cannot see one). Flagged `update`:
        # Snakemake keeps the previous outbox while the job runs and restores it if the job
        # fails, so that a failed rebuild never takes away what `send` would send.
        update(directory("results/outbox")),
    conda:
        "../../environment.yml"
    log:
        "logs/outbox.log",
    script:
        "../scripts/outbox.py"


rule send:
    """Send the outbox over SMTP (never part of the default run): `snakemake --cores 1 send`.
    Runs with Snakemake's own interpreter (a script, not a shell `python`). Its only inputs are
    its code: it never rebuilds the pipeline, it sends the outbox of the latest successful run
    or refuses a stale one (exit status 3, see `onerror` below). The ledger (config
    delivery.ledger) makes a rerun send nothing twice."""
    input:
        code=script_code("send"),
    conda:
        "../../environment.yml"
    log:
        summary="logs/send.log",
        status=SEND_STATUS,
    script:
        "../scripts/send.py"


onerror:
    # `snakemake send` ends with the sender's own exit status (README.md, "Sending the
    # reports"), not with Snakemake's 1 for any failed job.
    exit_with_send_status()

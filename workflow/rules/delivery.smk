rule delivery_manifest:
    """Who receives which report: the partners of the study receive the evaluation report."""
    input:
        registry=config["registry"],
        reports=expand("results/reports/evaluation.{lang}.pdf", lang=LANGUAGES),
        code=package_modules("delivery", "io"),
    output:
        "results/outbox/manifest.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/delivery_manifest.log",
    script:
        "../scripts/delivery_manifest.py"

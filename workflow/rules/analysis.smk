rule score:
    """Scale scores per participant, wave and domain, and their descriptives."""
    input:
        responses="results/clean/responses.csv",
        codebook=config["codebook"],
        code=package_modules("scoring", "pipeline"),
    output:
        scores="results/clean/scores.csv",
        descriptives="results/tables/descriptives.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/score.log",
    script:
        "../scripts/score.py"


rule fit_domain:
    """The primary mixed model of one competency domain (one job per domain)."""
    input:
        scores="results/clean/scores.csv",
        code=package_modules("models", "pipeline"),
    output:
        "results/models/{domain}.json",
    conda:
        "../../environment.yml"
    log:
        "logs/fit_domain/{domain}.log",
    wildcard_constraints:
        domain="|".join(DOMAINS),
    script:
        "../scripts/fit_domain.py"


rule collect_models:
    """Tidy tables of all domains: the difference-in-differences with the Holm correction."""
    input:
        fits=expand("results/models/{domain}.json", domain=DOMAINS),
        code=package_modules("models", "pipeline"),
    output:
        did="results/tables/did.csv",
        fixed_effects="results/tables/fixed_effects.csv",
        variance_components="results/tables/variance_components.csv",
        model_checks="results/tables/model_checks.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/collect_models.log",
    script:
        "../scripts/collect_models.py"

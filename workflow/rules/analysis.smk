# Small steps run where Snakemake runs, not as cluster jobs (see README.md,
# "Running on a cluster").
localrules:
    collect_models,


rule score:
    """Scale scores per participant, wave and domain, their descriptives, and the
    participant flow down to each domain's model."""
    input:
        responses="results/clean/responses.csv",
        flow_waves="results/clean/flow_waves.csv",
        codebook=config["codebook"],
        code=script_code("score"),
    params:
        settings=ScoreSettings.from_config(config).as_params(),
    output:
        scores="results/clean/scores.csv",
        descriptives="results/tables/descriptives.csv",
        flow="results/tables/flow.csv",
        sample="results/tables/sample.csv",
        municipalities="results/tables/municipalities.csv",
        score_benchmarks="results/tables/score_benchmarks.csv",
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../../environment.yml"
    log:
        "logs/score.log",
    script:
        "../scripts/score.py"


rule reliability:
    """Cronbach's alpha (Feldt interval), omega total and item statistics per domain and wave."""
    input:
        responses="results/clean/responses.csv",
        codebook=config["codebook"],
        code=script_code("reliability"),
    output:
        "results/tables/reliability.csv",
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../../environment.yml"
    log:
        "logs/reliability.log",
    script:
        "../scripts/reliability.py"


rule invariance:
    """Longitudinal measurement invariance (configural, metric, scalar, partial scalar) of each
    domain's items between entry and exit, for all participants and per cohort."""
    input:
        responses="results/clean/responses.csv",
        codebook=config["codebook"],
        code=script_code("invariance"),
    params:
        settings=InvarianceSettings.from_config(config).as_params(),
    output:
        table="results/tables/invariance.csv",
        loadings="results/tables/invariance_loadings.csv",
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../../environment.yml"
    log:
        "logs/invariance.log",
    script:
        "../scripts/invariance.py"


rule needs_analysis:
    """Importance of need areas and preferred formats by stakeholder group."""
    input:
        needs="results/clean/needs.csv",
        formats="results/clean/needs_formats.csv",
        code=script_code("needs_analysis"),
    output:
        needs="results/tables/needs.csv",
        distribution="results/tables/needs_distribution.csv",
        tests="results/tables/needs_tests.csv",
        formats="results/tables/needs_formats.csv",
        needs_benchmarks="results/tables/needs_benchmarks.csv",
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../../environment.yml"
    log:
        "logs/needs_analysis.log",
    script:
        "../scripts/needs_analysis.py"


rule fit_domain:
    """The primary mixed model of one competency domain, its effect sizes and sensitivity
    analyses (one job per domain)."""
    input:
        scores="results/clean/scores.csv",
        code=script_code("fit_domain"),
    params:
        settings=DomainModelSettings.from_config(config).as_params(),
    output:
        fit="results/models/{domain}.json",
        frame="results/models/{domain}.frame.csv",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    conda:
        "../../environment.yml"
    log:
        "logs/fit_domain/{domain}.log",
    wildcard_constraints:
        domain="|".join(DOMAINS),
    script:
        "../scripts/fit_domain.py"


rule fit_combined:
    """Secondary analysis: one model of all domains with a common difference-in-differences."""
    input:
        scores="results/clean/scores.csv",
        code=script_code("fit_combined"),
    params:
        settings=CombinedModelSettings.from_config(config).as_params(),
    output:
        "results/models/combined.json",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    conda:
        "../../environment.yml"
    log:
        "logs/fit_combined.log",
    script:
        "../scripts/fit_combined.py"


rule collect_models:
    """Tidy tables of all domains: the difference-in-differences with the Holm correction,
    effect sizes, model checks, sensitivity analyses and response shift."""
    input:
        fits=expand("results/models/{domain}.json", domain=DOMAINS),
        combined="results/models/combined.json",
        code=script_code("collect_models"),
    output:
        did="results/tables/did.csv",
        fixed_effects="results/tables/fixed_effects.csv",
        variance_components="results/tables/variance_components.csv",
        model_checks="results/tables/model_checks.csv",
        effect_sizes="results/tables/effect_sizes.csv",
        response_shift="results/tables/response_shift.csv",
        sensitivity="results/tables/sensitivity.csv",
        qq="results/tables/qq.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/collect_models.log",
    script:
        "../scripts/collect_models.py"

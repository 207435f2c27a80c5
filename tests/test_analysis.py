"""The analysis stage on the demo study and on degenerate data."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from dpo_eval.analysis import models
from dpo_eval.analysis.lmm import optimisation
from dpo_eval.analysis.needs import group_differences, importance_summary
from dpo_eval.core.settings import DomainModelSettings
from dpo_eval.steps import analysis_rules as analysis_step

COVARIATES = ["role", "years_in_management"]


@pytest.fixture(scope="module")
def scores(demo_run):
    return pd.read_csv(demo_run / "results" / "clean" / "scores.csv")


@pytest.mark.pipeline
def test_did_counts_equal_the_flow(demo_run):
    did = pd.read_csv(demo_run / "results" / "tables" / "did.csv").set_index("domain")
    flow = pd.read_csv(demo_run / "results" / "tables" / "flow.csv")
    model_rows = flow[flow["wave"] == "pre+post"]
    for domain, row in did.iterrows():
        assert row["n_participants"] == model_rows.loc[model_rows["domain"] == domain, "analysed"].sum()
    assert (did["n_institutions"] == 60).all()
    assert ["domain", *did.columns] == ["domain", "estimate", "std_error", "df", "statistic", "p_value", "p_holm",
                                 "conf_low", "conf_high", "d_ppc2", "d_conf_low", "d_conf_high",
                                 "n_participants", "n_institutions"]


@pytest.mark.pipeline
def test_analysis_tables_are_complete(demo_run):
    tables = demo_run / "results" / "tables"
    reliability = pd.read_csv(tables / "reliability.csv")
    alphas = reliability[reliability["term"] == "alpha"]
    assert set(alphas["domain"]) == {"universal", "professional", "subject_methodical", "communication"}
    assert (alphas["conf_low"] < alphas["estimate"]).all() and (alphas["estimate"] < alphas["conf_high"]).all()
    checks = pd.read_csv(tables / "model_checks.csv")
    assert checks["converged"].all() and checks["variance_components_identifiable"].all()
    assert (checks["scaled_gradient"] < optimisation.GRADIENT_TOLERANCE).all()
    assert checks[["icc_institution", "icc_participant", "r2_marginal", "r2_conditional"]].apply(
        lambda c: c.between(0, 1)).all().all()
    sensitivity = pd.read_csv(tables / "sensitivity.csv")
    assert set(sensitivity["analysis"]) == {"primary", "careless_excluded", "completers", "then_baseline",
                                            "followup", "moderation_communication", "combined"}
    shift = pd.read_csv(tables / "response_shift.csv")
    assert set(shift["cohort"]) == {"program", "comparison", "program - comparison"}
    qq = pd.read_csv(tables / "qq.csv")
    assert set(qq["kind"]) == {"residual", "institution", "institution:participant"}


@pytest.mark.pipeline
def test_response_shift_recovers_the_generator_truth(demo_run, demo_truth):
    shift = pd.read_csv(demo_run / "results" / "tables" / "response_shift.csv")
    for domain, cohorts in demo_truth["true_effects"]["response_shift_score"].items():
        for cohort, value in cohorts.items():
            row = shift[(shift["domain"] == domain) & (shift["cohort"] == cohort)].iloc[0]
            # Six estimates: each within 3 standard errors of its true value.
            assert abs(row["estimate"] - value) < 3 * row["std_error"], (domain, cohort)


@pytest.mark.pipeline
def test_needs_profile_recovers_the_generator_truth(demo_run, demo_truth):
    needs = pd.read_csv(demo_run / "results" / "tables" / "needs.csv")
    ranks = needs[needs["stakeholder"] == "school"].set_index("area")["estimate"]
    truth = pd.Series(demo_truth["needs"]["true_mean_importance"]["school"])
    assert np.corrcoef(ranks.reindex(truth.index), truth)[0, 1] > 0.8
    tests = pd.read_csv(demo_run / "results" / "tables" / "needs_tests.csv")
    assert (tests["p_holm"] >= tests["p_value"]).all()


def test_needs_functions_on_a_small_example():
    needs = pd.DataFrame({"stakeholder": ["school"] * 4 + ["iro"] * 4, "area": ["a"] * 8,
                          "value": [5, 4, 4, 2, 1, 2, 2, 3]})
    summary = importance_summary(needs).set_index("stakeholder")
    assert summary.loc["school", "estimate"] == 3.75 and summary.loc["school", "share_important"] == 0.75
    test = group_differences(needs).iloc[0]
    # R: kruskal.test(list(c(5, 4, 4, 2), c(1, 2, 2, 3))): H = 3.1899, df = 1, p = 0.0741
    # (tests/reference/effect_sizes_and_tests.R).
    assert test["test"] == "Kruskal-Wallis" and test["df"] == 1 and test["n"] == 8
    assert round(test["statistic"], 4) == 3.1899 and round(test["p_value"], 4) == 0.0741
    assert test["p_holm"] == test["p_value"]  # one area: nothing to adjust


@pytest.mark.pipeline
def test_domain_without_answers_gets_a_clear_message(scores):
    with pytest.raises(models.ModelDataError, match="domain 'universal': no scale scores"):
        models.model_frame(scores[scores["domain"] != "universal"], "universal", COVARIATES)


@pytest.mark.pipeline
def test_cohort_without_post_wave_gets_a_clear_message(scores):
    no_post = scores[~((scores["cohort"] == "comparison") & (scores["wave"] == "post"))]
    with pytest.raises(models.ModelDataError, match="the comparison cohort has no scores at the post wave"):
        models.model_frame(no_post, "professional", COVARIATES)


@pytest.mark.pipeline
def test_model_that_does_not_converge_is_flagged_not_hidden(scores, tmp_path, monkeypatch, demo_config, caplog):
    scores_path = tmp_path / "scores.csv"
    scores.to_csv(scores_path, index=False)
    monkeypatch.setattr(optimisation, "GRADIENT_TOLERANCE", 0.0)
    output = {"fit": tmp_path / "fit.json", "frame": tmp_path / "frame.csv"}
    analysis_step.fit_domain(DomainModelSettings.from_config(demo_config), scores_path, "subject_methodical", output)
    fit = json.loads(output["fit"].read_text())
    assert fit["checks"]["converged"] is False
    assert "did not reach a stationary point" in caplog.text


def rscript(code: str, *args: str) -> list[float]:
    result = subprocess.run(["Rscript", "-e", code, *args], capture_output=True, text=True, check=True)
    return [float(v) for v in result.stdout.split()]


@pytest.mark.pipeline
@pytest.mark.requires_tool("R")
def test_holm_and_kruskal_wallis_of_the_demo_tables_match_r(demo_run):
    """did.csv's p_holm is R's p.adjust(p_value, "holm"); needs_tests.csv is R's kruskal.test
    of the ratings by stakeholder group, per area, and p.adjust of its p-values."""
    did = pd.read_csv(demo_run / "results" / "tables" / "did.csv")
    holm = rscript('cat(sprintf("%.17g", p.adjust(as.numeric(commandArgs(TRUE)), "holm")))',
                   *(repr(p) for p in did["p_value"]))
    assert did["p_holm"].tolist() == pytest.approx(holm, rel=1e-8)

    needs = demo_run / "results" / "clean" / "needs.csv"
    code = ('d <- read.csv(commandArgs(TRUE)[1]); out <- NULL; '
            'for (a in sort(unique(d$area))) { s <- d[d$area == a, ]; '
            'k <- kruskal.test(s$value, factor(s$stakeholder)); '
            'out <- rbind(out, c(k$statistic, k$parameter, k$p.value)) }; '
            'cat(sprintf("%.17g", c(out, p.adjust(out[, 3], "holm"))))')
    values = rscript(code, str(needs))
    tests = pd.read_csv(demo_run / "results" / "tables" / "needs_tests.csv").sort_values("area")
    n = len(tests)
    assert len(values) == 4 * n
    assert tests["statistic"].tolist() == pytest.approx(values[:n], rel=1e-8)
    assert tests["df"].tolist() == values[n:2 * n]
    assert tests["p_value"].tolist() == pytest.approx(values[2 * n:3 * n], rel=1e-8)
    assert tests["p_holm"].tolist() == pytest.approx(values[3 * n:], rel=1e-8)

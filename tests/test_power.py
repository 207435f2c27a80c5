"""Power analysis (dpo_eval.simulation_studies.power): the simulation against the analytic design-effect
approximation in the simple case, the Monte Carlo intervals, Holm across domains, the workflow's
table, figure and bilingual report."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.stats.multitest import multipletests

from conftest import REPO, SMALL_SIMULATION
from dpo_eval.reporting.accessibility import organisations
from dpo_eval.reporting.formulas import formula_html
from dpo_eval.simulation_studies import power
from test_accessibility import (formula_alternatives, lines_ending_in_one_letter_word, page_empty_shares, pdf_lines,
                                structure_problems, visible_text)

DEMO_POWER = yaml.safe_load((REPO / "config" / "power.yaml").read_text(encoding="utf-8"))["power"]


def simple_case(**changes) -> power.PlannedDesign:
    """The demo design's variance parameters and one domain's expected effect, with complete
    data, equal teams and no covariates: the case the analytic approximation is exact for."""
    demo = DEMO_POWER["design"]
    settings = dict(did={"subject_methodical": demo["did"]["subject_methodical"]},
                    icc_institution=demo["icc_institution"], icc_participant=demo["icc_participant"],
                    residual_sd=demo["residual_sd"], team_size=demo["team_size"],
                    team_size_distribution="fixed", missing_pre=0.0, attrition_post=0.0,
                    covariates=(), alpha=demo["alpha"])
    return power.PlannedDesign(**{**settings, **changes})


def test_simulated_power_agrees_with_the_design_effect_formula_in_the_simple_case():
    design = simple_case()
    schools = 10  # power near one half, where the Monte Carlo check is the most sensitive
    batch = power.power_batch(design, schools, list(range(200)), seed=DEMO_POWER["seed"])
    row = power.power_table(batch, design).set_index("domain").loc["subject_methodical"]
    analytic = power.analytic_power(design, schools, design.did["subject_methodical"])
    assert 0.3 < analytic < 0.7
    assert row["mc_low"] <= analytic <= row["mc_high"], (row["power"], analytic)
    # The formula's standard error, 2 sigma / sqrt(n m) here, is what the fitted models report.
    tau_s2, tau_p2, sigma2 = design.variances
    assert batch["std_error"].mean() == pytest.approx(2 * np.sqrt(sigma2 / (schools * 4)), rel=0.03)
    assert batch["estimate"].mean() == pytest.approx(design.did["subject_methodical"],
                                                     abs=3 * batch["estimate"].std() / np.sqrt(len(batch)))


def test_design_effect_reduces_to_the_textbook_cases():
    # No clustering at all: the two-sample t-test of change scores with 2 n m participants.
    design = simple_case(icc_institution=0.0, icc_participant=0.0)
    n, m, did = 10, 4, design.did["subject_methodical"]
    se = np.sqrt(2 * 2 * design.residual_sd**2 / (n * m))
    df = 2 * n * m - 2
    crit = power.stats.t.ppf(0.975, df)
    expected = power.stats.nct.sf(crit, df, did / se) + power.stats.nct.cdf(-crit, df, did / se)
    assert power.analytic_power(design, n, did) == pytest.approx(expected, rel=1e-12)
    # A school effect that is constant over the waves cancels from the DiD of complete data.
    clustered = simple_case(icc_institution=0.3, icc_participant=0.6)
    assert power.analytic_power(clustered, n, did) == pytest.approx(
        power.analytic_power(simple_case(icc_institution=0.0, icc_participant=0.6), n, did), rel=1e-12)
    # Attrition leaves fewer participants with both waves: less power.
    assert power.analytic_power(simple_case(attrition_post=0.3), n, did) < power.analytic_power(design, n, did)


def test_clopper_pearson_matches_the_binomial_limits():
    assert power.clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10)))
    low, high = power.clopper_pearson(5, 10)
    assert (low, high) == (pytest.approx(0.187086, abs=1e-6), pytest.approx(0.812914, abs=1e-6))
    # The limits are where the binomial tails equal 2.5%.
    assert power.stats.binom.sf(4, 10, low) == pytest.approx(0.025)
    assert power.stats.binom.cdf(5, 10, high) == pytest.approx(0.025)


def test_holm_across_domains_and_the_joint_power():
    design = simple_case(did={"universal": 0.3, "professional": 0.3})
    replicates = pd.DataFrame({
        "schools_per_arm": 5, "replicate": [0, 0, 1, 1, 2, 2], "participants": 40,
        "domain": ["universal", "professional"] * 3, "estimate": 0.3, "std_error": 0.1, "df": 70,
        "p_value": [0.01, 0.04, 0.03, 0.2, 0.001, 0.002], "converged": True})
    replicates["p_adjusted"] = [0.02, 0.04, 0.06, 0.2, 0.002, 0.002]  # Holm, by hand
    replicates["rejected"] = replicates["p_adjusted"] < 0.05
    table = power.power_table(replicates, design).set_index("domain")
    assert table.loc["universal", "rejections"] == 2 and table.loc["professional", "rejections"] == 2
    assert table.loc["all", "rejections"] == 2  # replicates 0 and 2 reject both
    assert power.schools_needed(table.reset_index(), 0.6) == {"universal": 5, "professional": 5, "all": 5}


def test_fit_replicate_applies_holm_like_the_analysis_plan():
    design = simple_case(did={"universal": 0.3, "professional": 0.1, "subject_methodical": 0.0},
                         covariates=("role", "years_in_management"))
    scores = power.simulate_scores(design, 6, power.replicate_rng(1, 6, 0))
    rows = power.fit_replicate(scores, design)
    p = [row["p_value"] for row in rows]
    assert [row["p_adjusted"] for row in rows] == pytest.approx(multipletests(p, method="holm")[1].tolist())


def test_impossible_designs_are_refused_with_the_setting_named():
    with pytest.raises(power.PowerDesignError, match="icc_institution"):
        simple_case(icc_institution=0.7, icc_participant=0.5)
    with pytest.raises(power.PowerDesignError, match="team_size"):
        simple_case(team_size=1.5, team_size_distribution="poisson")


@pytest.mark.pipeline
@pytest.mark.requires_tool("pdftotext")
def test_workflow_writes_table_figures_and_bilingual_report(simulation_run):
    results = simulation_run / "results" / "power"
    table = pd.read_csv(results / "power.csv")
    grid = SMALL_SIMULATION["power"]["schools_per_arm"]
    assert sorted(table["schools_per_arm"].unique()) == grid
    assert set(table["domain"]) == {*DEMO_POWER["design"]["did"], "all"}
    assert (table["replicates"] == SMALL_SIMULATION["power"]["replicates"]).all()
    assert ((table["mc_low"] <= table["power"]) & (table["power"] <= table["mc_high"])).all()
    for lang in ("ru", "en"):
        assert (results / f"power_curve.{lang}.svg").read_text(encoding="utf-8").startswith("<?xml")
        assert (results / f"power_curve.{lang}.png").read_bytes().startswith(b"\x89PNG")
        assert (results / f"power.{lang}.pdf").read_bytes().startswith(b"%PDF-")
    text = {lang: " ".join(subprocess.run(["pdftotext", str(results / f"power.{lang}.pdf"), "-"],
                                          capture_output=True, text=True, check=True).stdout.split())
            for lang in ("ru", "en")}
    assert "How many schools do we need?" in text["en"] and "Сколько школ нужно?" in text["ru"]
    assert "Clopper" in text["en"] and "Клоппера" in text["ru"]


@pytest.mark.pipeline
@pytest.mark.requires_tool("pdftotext")
def test_power_report_is_made_like_the_evaluation_report(simulation_run, demo_config):
    """One code path for every report: typeset (no line of the Russian report ends with a
    one-letter word, the abbreviations expanded), tagged with language, title and figure
    alternative texts, the organisations of the configuration as Author, its formula as text."""
    import pikepdf

    strings = yaml.safe_load((REPO / "reports" / "templates" / "power.yaml").read_text(encoding="utf-8"))
    for lang in ("ru", "en"):
        pdf = simulation_run / "results" / "power" / f"power.{lang}.pdf"
        assert structure_problems(pdf) == [], lang
        with pikepdf.open(pdf) as document:
            assert str(document.Root.Lang) == lang
            assert str(document.docinfo.Author) == ", ".join(organisations(demo_config, lang))
            assert formula_alternatives(pdf.read_bytes()), lang
        text = "".join(" ".join(pdf_lines(pdf)).split())
        assert visible_text(formula_html(strings[lang]["formula"].split(r"\qquad")[0])) in text, lang
        assert "$" not in text and "alpha/k" not in text
        shares = page_empty_shares(pdf)
        assert all(share <= 0.40 for share in shares[:-1]), (lang, [round(s, 2) for s in shares])
    ru = " ".join(" ".join(pdf_lines(simulation_run / "results" / "power" / "power.ru.pdf")).split())
    assert "ВКК (внутриклассовый коэффициент корреляции)" in ru and "ICC" not in ru and " SD " not in ru
    assert lines_ending_in_one_letter_word(pdf_lines(simulation_run / "results" / "power" / "power.ru.pdf")) == []

"""The REML engine (dpo_eval.analysis.lmm): agreement with lme4/lmerTest, exact derivatives, convergence
labels, identifiability and the command line.

Stored lme4 results: tests/reference/engine/lme4.csv, written by tests/reference/engine_reference.R
from the frames next to it (made by `python benchmarks/lmm_speed.py --write-test-frames`).
Exact Satterthwaite df on the two designs with a tiny residual variance:
tests/reference/engine/satterthwaite_40_digits.csv, written by
tests/reference/satterthwaite_40_digits.py (40-digit decimal arithmetic, no engine code).
"""

import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from dpo_eval.analysis import models
from dpo_eval.analysis import lmm
from dpo_eval.analysis.lmm import criterion
from dpo_eval.analysis.lmm import NestedLmm, RandomTerm

ENGINE = REPO / "tests" / "reference" / "engine"
LME4 = pd.read_csv(ENGINE / "lme4.csv", keep_default_na=False)
CASES = sorted(set(LME4["case"]) - {"versions"})
EXACT = pd.read_csv(ENGINE / "satterthwaite_40_digits.csv")


def _reference_module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "reference" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


reml_criterion_40_digits = _reference_module("satterthwaite_40_digits").reml_criterion_40_digits

# Designs on which lmerTest's numerical df are not a 1e-4 reference: its numDeriv Hessian of
# lme4's deviance (accurate to ~1e-11 relative there) moves the df by more than 1e-4 with the
# step (test_lmertest_df_on_the_tiny_residual_design_are_within_their_own_numerical_noise); the
# engine's df are held to the exact 40-digit df instead (test_satterthwaite_matches_40_digits).
LMERTEST_DF_NOT_A_REFERENCE = {"tiny-residual"}


def lme4_value(case: str, quantity: str, term: str = "") -> float:
    row = LME4[(LME4["case"] == case) & (LME4["quantity"] == quantity) & (LME4["term"] == term)]
    assert len(row) == 1, (case, quantity, term)
    return float(row["value"].iloc[0])


def frame_model(frame: pd.DataFrame) -> NestedLmm:
    design = [c for c in frame.columns if c.startswith("x_")]
    ones = np.ones((len(frame), 1))
    institution = frame["institution"].astype(str).to_numpy()
    participant = institution + ":" + frame["participant"].astype(str).to_numpy()
    terms = [RandomTerm("institution", institution, ones),
             RandomTerm("institution:participant", participant, ones)]
    if "domain" in frame:
        terms.append(RandomTerm("institution:participant:domain",
                                participant + ":" + frame["domain"].astype(str).to_numpy(), ones))
    return NestedLmm(frame["y"].to_numpy(), frame[design].to_numpy(), terms, design)


@pytest.fixture(scope="module")
def fits():
    out = {}
    for case in CASES:
        model = frame_model(pd.read_csv(ENGINE / f"{case}.csv"))
        fit = model.fit()
        df, se = model.satterthwaite(fit, np.eye(model.p))
        out[case] = (model, fit, df, se)
    return out


@pytest.mark.parametrize("case", CASES)
def test_engine_agrees_with_lme4_and_lmertest(fits, case):
    """Estimates, SEs, df and variance components within 1e-4 relative (an estimate near zero
    within 1e-4 of its SE); the REML criterion never worse than lme4's by 1e-6 relative. The df
    are compared where lmerTest's numerical df are a 1e-4 reference (not on tiny-residual, where
    the exact 40-digit df are the reference)."""
    model, fit, df, se = fits[case]
    for index, term in enumerate(model.fixed_names):
        r_se = lme4_value(case, "std_error", term)
        assert fit.beta[index] == pytest.approx(lme4_value(case, "estimate", term), rel=1e-4, abs=1e-4 * r_se)
        assert se[index] == pytest.approx(r_se, rel=1e-4)
        if case not in LMERTEST_DF_NOT_A_REFERENCE:
            assert df[index] == pytest.approx(lme4_value(case, "df", term), rel=1e-4)
    residual = lme4_value(case, "variance", "Residual")
    assert fit.sigma**2 == pytest.approx(residual, rel=1e-4)
    for name, covariance in fit.covariances.items():
        assert covariance[0, 0] == pytest.approx(lme4_value(case, "variance", name), rel=1e-4, abs=1e-8 * residual)
    optimum = lme4_value(case, "reml_criterion")
    assert fit.reml_criterion <= optimum + 1e-6 * abs(optimum)
    assert fit.converged and fit.identifiable
    assert fit.singular == bool(lme4_value(case, "singular"))


@pytest.mark.parametrize("case", ["tiny-residual", "thousands"])
def test_tiny_residual_criterion_keeps_its_precision(fits, case):
    """Residual variance 1e-6 at scores around 3, and outcomes in the thousands with a residual
    SD of 1% of the random-effect SDs: the criterion at lme4's own theta is reproduced to 1e-9
    relative, and the optimum found is not above lme4's."""
    model, fit, _, _ = fits[case]
    lme4_theta = np.array([lme4_value(case, "theta", name) for name in ("institution", "institution:participant")])
    optimum = lme4_value(case, "reml_criterion")
    assert model.reml_criterion(lme4_theta) == pytest.approx(optimum, rel=1e-9)
    assert fit.reml_criterion <= optimum + 1e-10 * abs(optimum)


def test_criterion_matches_a_40_digit_computation():
    """Tiny residual variance (1e-6 at scores around 3): the engine's criterion equals a 40-digit
    computation to 1e-13 relative at the optimum and far from it (lme4's own deviance function
    is off by 2e-8 and 3e-6 absolute at these two points)."""
    frame = pd.read_csv(ENGINE / "tiny-residual.csv")
    model = frame_model(frame)
    for theta in ((282.663, 485.285), (3000.0, 5000.0)):
        exact = float(reml_criterion_40_digits(frame, theta))
        assert model.reml_criterion(np.array(theta)) == pytest.approx(exact, rel=1e-13, abs=0)


def exact_rows(case: str, point: str) -> pd.DataFrame:
    rows = EXACT[(EXACT["case"] == case) & (EXACT["point"] == point)]
    assert len(rows) > 0, (case, point)
    return rows


@pytest.mark.parametrize("case", ["tiny-residual", "thousands"])
def test_satterthwaite_matches_40_digits(fits, case):
    """The engine's exact Satterthwaite df and SEs equal an independent 40-digit computation
    (tests/reference/satterthwaite_40_digits.py; its error is ~2e-16) to 1e-8 relative at the
    same variance parameters (the 40-digit optimum and lme4's theta; measured: at most 2.5e-14;
    1.9e-10 on tiny-residual when the deviance Hessian was inverted by SVD, which loses digits on
    this graded matrix). At the engine's own optimum its theta is the exact optimum to 1e-7
    (measured 5e-12 and 1.3e-9), its criterion equals the exact optimum to 1e-12, its df equal
    the exact ones to 1e-7 (measured 6e-12 and 2.1e-9) and its SEs to 1e-8 (measured 2.5e-12
    and 7.3e-10). lmerTest's df are within 1e-4 of these only on thousands."""
    model, fit, df, se = fits[case]
    for point in ("optimum", "lme4_theta"):
        rows = exact_rows(case, point)
        assert list(rows["term"]) == model.fixed_names
        theta = rows[["theta_institution", "theta_participant"]].iloc[0].to_numpy(dtype=float)
        at_point = model._summarise(theta, point)
        assert at_point.sigma == pytest.approx(rows["sigma"].iloc[0], rel=1e-12)
        df_at, se_at = model.satterthwaite(at_point, np.eye(model.p))
        np.testing.assert_allclose(df_at, rows["df"], rtol=1e-8, atol=0, err_msg=point)
        np.testing.assert_allclose(se_at, rows["std_error"], rtol=1e-10, atol=0, err_msg=point)
    optimum = exact_rows(case, "optimum")
    np.testing.assert_allclose(fit.theta, optimum[["theta_institution", "theta_participant"]].iloc[0], rtol=1e-7)
    assert fit.reml_criterion == pytest.approx(optimum["reml_criterion"].iloc[0], rel=1e-12)
    np.testing.assert_allclose(df, optimum["df"], rtol=1e-7, atol=0)
    np.testing.assert_allclose(se, optimum["std_error"], rtol=1e-8, atol=0)


def test_40_digit_reference_is_stable_and_at_the_optimum():
    """The stored reference: halving the difference step moves no df by 1e-14 relative, and the
    point called the optimum is one (scaled deviance gradient ~1e-13; lme4's theta: ~1e-3)."""
    assert set(EXACT["case"]) == {"tiny-residual", "thousands"}
    np.testing.assert_allclose(EXACT["df_half_step"], EXACT["df"], rtol=1e-14, atol=0)
    at_optimum = EXACT["point"] == "optimum"
    assert (EXACT.loc[at_optimum, "max_scaled_deviance_gradient"] < 1e-9).all()
    assert (EXACT.loc[~at_optimum, "max_scaled_deviance_gradient"] > 1e-6).all()


def test_lmertest_df_on_the_tiny_residual_design_are_within_their_own_numerical_noise():
    """Tiny residual variance (1e-6 at scores around 3): lmerTest's df differ from the exact
    40-digit df at the same point (lme4's theta) by up to 2.6e-4 relative (x_1 198.4176 against
    198.4407, x_5 518.0208 against 517.8883), and that is the noise of its numerical Hessian:
    with numDeriv's Hessian step d = 1e-2 or 1e-3 instead of lmerTest's 0.1 (same deviance
    function, same point; tests/reference/engine_reference.R) its own df move by up to 1.8e-2,
    so it cannot be the 1e-4 reference there (the exact df move by 2e-16 when their step is
    halved). On the thousands design (control) lmerTest's df agree with the exact ones to 1.1e-5
    (its Hessian step moves them by up to 4e-4 there too, but its default step happens to be
    accurate), so the 1e-4 comparison with lmerTest is kept for it."""
    exact = exact_rows("tiny-residual", "lme4_theta").set_index("term")["df"]
    deviation, noise = {}, {}
    for term, exact_df in exact.items():
        lmertest = lme4_value("tiny-residual", "df", term)
        other_steps = [lme4_value("tiny-residual", f"df_fresh_devfun_hessian_d_{d}", term) for d in ("1e-2", "1e-3")]
        deviation[term] = abs(lmertest / exact_df - 1)
        noise[term] = max(abs(v / lmertest - 1) for v in other_steps)
        assert deviation[term] < 1e-3, term
        assert deviation[term] <= noise[term], (term, deviation[term], noise[term])
    assert max(noise.values()) > 1e-4
    assert max(deviation.values()) > 1e-4  # else lmerTest would be a 1e-4 reference here after all
    control = exact_rows("thousands", "lme4_theta").set_index("term")["df"]
    for term, exact_df in control.items():
        assert lme4_value("thousands", "df", term) == pytest.approx(exact_df, rel=1e-4)


def test_criterion_derivatives_are_exact():
    """Analytic gradient and forward-mode Hessian against central differences, for nested
    intercepts (three levels) and a random slope (sleepstudy)."""
    model = frame_model(pd.read_csv(ENGINE / "three-level.csv"))
    sleep = pd.read_csv(REPO / "tests" / "reference" / "sleepstudy.csv")
    X = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    slope = NestedLmm(sleep["Reaction"].to_numpy(), X,
                      [RandomTerm("Subject", sleep["Subject"].to_numpy(), X, ("(Intercept)", "Days"))])
    for m, phi in ((model, np.array([0.3, 1.2, 0.6])), (slope, np.array([0.9, 0.1, 0.25]))):
        first, second = m._evaluate(phi, 1), m._evaluate(phi, 2)
        assert first["criterion"] == pytest.approx(second["criterion"], rel=1e-12)
        np.testing.assert_allclose(first["gradient"], second["gradient"], rtol=1e-7, atol=1e-9)
        step = 1e-5
        for i in range(len(phi)):
            e = np.zeros(len(phi))
            e[i] = step
            up, down = m._evaluate(phi + e, 1), m._evaluate(phi - e, 1)
            assert (up["criterion"] - down["criterion"]) / (2 * step) == pytest.approx(first["gradient"][i], rel=1e-6)
            np.testing.assert_allclose((up["gradient"] - down["gradient"]) / (2 * step), second["hessian"][i],
                                       rtol=1e-5, atol=1e-6)


def generated_design(rng: np.random.Generator) -> pd.DataFrame:
    """A random two-wave design: 5-120 institutions, 1-40 participants each, 0-40% missing post
    scores, variance components from zero to ICC 0.8, outcome levels from 3 to 3000."""
    institutions = int(rng.integers(5, 121))
    sizes = rng.integers(1, int(rng.choice([3, 8, 40])) + 1, institutions)
    scale = float(rng.choice([1.0, 1000.0]))
    sd_inst = float(rng.choice([0.0, 1e-3, 0.3, 1.0])) * scale
    sd_part = float(rng.choice([0.0, 1e-3, 0.5, 1.5])) * scale
    sd_res = float(rng.choice([1.0, 0.3])) * scale
    missing = float(rng.uniform(0, 0.4))
    inst = np.repeat(np.arange(institutions), sizes)
    program = (inst % 2).astype(float)
    u_i, u_p = rng.normal(0, sd_inst, institutions), rng.normal(0, sd_part, len(inst))
    rows = []
    for post in (0.0, 1.0):
        keep = np.flatnonzero(rng.random(len(inst)) >= (missing if post else 0.0))
        y = 3 * scale + 0.2 * scale * post * program[keep] + u_i[inst[keep]] + u_p[keep] \
            + rng.normal(0, sd_res, len(keep))
        rows.append(pd.DataFrame({"y": y, "institution": inst[keep], "participant": keep, "x_1": 1.0,
                                  "x_2": post, "x_3": program[keep], "x_4": post * program[keep]}))
    return pd.concat(rows, ignore_index=True)


def test_no_fit_at_the_optimum_is_labelled_not_converged():
    """30 generated designs: every fit is labelled converged, and each is at the optimum (no
    feasible step of 1e-4 in any relative SD lowers the criterion)."""
    rng = np.random.default_rng(2026)
    for index in range(30):
        frame = generated_design(rng)
        model = frame_model(frame)
        fit = model.fit()
        assert fit.converged, (index, fit.optimizer_message)
        for i in range(len(fit.theta)):
            for sign in (1.0, -1.0):
                trial = fit.theta.copy()
                trial[i] = max(trial[i] + sign * 1e-4 * max(trial[i], 1.0), 0.0)
                assert model.reml_criterion(trial) >= fit.reml_criterion - 1e-9 * abs(fit.reml_criterion), index


def test_convergence_label_follows_the_scaled_gradient():
    model = frame_model(pd.read_csv(ENGINE / "small.csv"))
    fit = model.fit()
    assert fit.converged and 0 < fit.scaled_gradient < lmm.GRADIENT_TOLERANCE
    # Away from the optimum (lme4's start) the scaled gradient is large.
    assert model._summarise(np.array([1.0, 1.0]), "start").converged is False


def test_one_participant_per_institution_is_reported_as_not_identifiable():
    rng = np.random.default_rng(3)
    n = 80
    frame = pd.DataFrame({"score": np.r_[rng.normal(3, 0.6, n) + 0.0, rng.normal(3.2, 0.6, n)],
                          "post": np.r_[np.zeros(n), np.ones(n)], "program": np.tile(np.arange(n) % 2, 2),
                          "institution": np.tile([f"S{i}" for i in range(n)], 2),
                          "participant_key": np.tile([f"P{i}" for i in range(n)], 2)})
    fit, design, _ = models.fit_model(frame, "score ~ post * program")
    checks = models.model_checks(fit, design, frame["score"].to_numpy())
    assert checks["variance_components_identifiable"] is False
    assert "single 'institution:participant'" in checks["identifiability_warning"]
    # Their sum is what the data identify: it equals the one-level model's variance.
    one_level = NestedLmm(frame["score"].to_numpy(), design.to_numpy(),
                          [RandomTerm("institution", frame["institution"].to_numpy(), np.ones((2 * n, 1)))])
    single = one_level.fit()
    total = fit.covariances["institution"][0, 0] + fit.covariances["institution:participant"][0, 0]
    assert total == pytest.approx(single.covariances["institution"][0, 0], rel=1e-4)
    assert fit.reml_criterion == pytest.approx(single.reml_criterion, rel=1e-9)


def test_unidentifiable_design_df_equal_the_identified_models():
    """One participant per institution: only the sum of the two variances is identified, the
    deviance Hessian in (theta, sigma) has an exact zero eigenvalue, and lmerTest's cutoff drops
    it (a plain pseudo-inverse inverts its rounded value, -2.6e-9 here, and moves the df by 6e-7).
    The df and SEs then equal those of the one-level model, which the exact (projected)
    computation gives, to 1e-8 relative (measured 1e-10)."""
    rng = np.random.default_rng(3)
    n = 80
    frame = pd.DataFrame({"score": np.r_[rng.normal(3, 0.6, n), rng.normal(3.2, 0.6, n)],
                          "post": np.r_[np.zeros(n), np.ones(n)], "program": np.tile(np.arange(n) % 2, 2),
                          "institution": np.tile([f"S{i}" for i in range(n)], 2),
                          "participant_key": np.tile([f"P{i}" for i in range(n)], 2)})
    fit, design, _ = models.fit_model(frame, "score ~ post * program")
    assert not fit.identifiable
    hessian, _ = fit.model.varpar_derivatives(fit)
    assert abs(np.linalg.eigvalsh(hessian)).min() <= lmm.EIGENVALUE_TOLERANCE
    df, se = fit.model.satterthwaite(fit, np.eye(len(fit.beta)))
    one_level = NestedLmm(frame["score"].to_numpy(), design.to_numpy(),
                          [RandomTerm("institution", frame["institution"].to_numpy(), np.ones((2 * n, 1)))])
    single = one_level.fit()
    df_single, se_single = one_level.satterthwaite(single, np.eye(len(single.beta)))
    np.testing.assert_allclose(df, df_single, rtol=1e-8, atol=0)
    np.testing.assert_allclose(se, se_single, rtol=1e-8, atol=0)


def count_evaluations(monkeypatch) -> list[tuple[bytes, int]]:
    """Record every uncached criterion evaluation as (phi's bytes, order)."""
    calls = []
    evaluate = criterion.ProfiledCriterion._evaluate_uncached

    def counted(self, phi, order):
        calls.append((np.asarray(phi, dtype=float).tobytes(), order))
        return evaluate(self, phi, order)

    monkeypatch.setattr(criterion.ProfiledCriterion, "_evaluate_uncached", counted)
    return calls


@pytest.mark.parametrize("case", CASES)
def test_fit_and_satterthwaite_evaluate_the_hessian_at_the_optimum_once(case, monkeypatch):
    """The Newton polish, the summary and the Satterthwaite df share one exact Hessian at the
    optimum (the fit keeps phi bit for bit, the criterion caches it)."""
    model = frame_model(pd.read_csv(ENGINE / f"{case}.csv"))
    calls = count_evaluations(monkeypatch)
    fit = model.fit()
    model.satterthwaite(fit, np.eye(model.p))
    models.contrast(fit, model.fixed_names[-1])
    assert calls.count((fit.phi.tobytes(), 2)) == 1
    assert sum(order == 2 for _, order in calls) <= 3


def test_newton_polish_stops_at_the_criterions_rounding_noise(monkeypatch):
    """With the outcome scaled by 1e30 the criterion is about 1.5e5 and its rounding noise
    (eps |d|, 3e-11) is far above the old absolute stopping test (|g'step| < 1e-13): that test
    took 10 exact Hessians, each step accepted or not by rounding alone. The Newton decrement
    is within the noise from the start, so the polish takes none, and the optimum is the
    unscaled one to 1e-5 (theta, measured 3e-7) with a scaled gradient far below lme4's 2e-3."""
    frame = pd.read_csv(ENGINE / "large-groups.csv")
    reference = frame_model(frame).fit()
    frame["y"] *= 1e30
    model = frame_model(frame)
    calls = count_evaluations(monkeypatch)
    fit = model.fit()
    assert sum(order == 2 for _, order in calls) == 1
    assert fit.converged and fit.scaled_gradient < 1e-4
    np.testing.assert_allclose(fit.theta, reference.theta, rtol=1e-5)


def test_command_line_fits_a_model_frame(tmp_path):
    out = tmp_path / "fit.csv"
    run = subprocess.run([sys.executable, "-m", "dpo_eval.analysis.models", "fit", str(ENGINE / "small.csv"), str(out)],
                         capture_output=True, text=True, check=True)
    assert "wall time" in run.stderr
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["quantity", "term", "value"]
    for quantity in ("estimate", "std_error", "df"):
        for term in [f"x_{i}" for i in range(1, 9)]:
            value = float(table[(table["quantity"] == quantity) & (table["term"] == term)]["value"].iloc[0])
            reference = lme4_value("small", quantity, term)
            assert value == pytest.approx(reference, rel=1e-4, abs=1e-4 * lme4_value("small", "std_error", term))
    crit = float(table[table["quantity"] == "reml_criterion"]["value"].iloc[0])
    assert crit <= lme4_value("small", "reml_criterion") * (1 + 1e-6)
    bad = tmp_path / "bad.csv"
    pd.read_csv(ENGINE / "small.csv").drop(columns="institution").to_csv(bad, index=False)
    run = subprocess.run([sys.executable, "-m", "dpo_eval.analysis.models", "fit", str(bad), str(tmp_path / "x.csv")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "missing: institution" in run.stderr
    assert not (tmp_path / "x.csv").exists()


def test_command_line_imports_only_what_fitting_needs(tmp_path):
    """`python -m dpo_eval.analysis.models fit` loads neither statsmodels, patsy nor scipy.stats (the
    pipeline's model step uses them; a fit does not): its start-up is part of every timing."""
    code = ("import runpy, sys; sys.argv = ['models', 'fit', sys.argv[1], sys.argv[2]]\n"
            "try:\n    runpy.run_module('dpo_eval.analysis.models', run_name='__main__')\n"
            "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print(' '.join(sorted(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", code, str(ENGINE / "small.csv"), str(tmp_path / "fit.csv")],
                         capture_output=True, text=True, check=True)
    loaded = set(run.stdout.split())
    assert "dpo_eval.analysis.lmm" in loaded and (tmp_path / "fit.csv").exists()
    assert not {m for m in loaded if m.split(".")[0] in {"statsmodels", "patsy", "matplotlib"}}
    assert "scipy.stats" not in loaded


@pytest.mark.requires_tool("R")
@pytest.mark.parametrize("case", ["tiny-residual", "thousands"])
def test_lme4_deviance_at_the_projects_theta_is_its_optimum(fits, case, tmp_path):
    """lme4's own REML deviance function (devFunOnly = TRUE) at the project's theta is within
    1e-8 relative of lme4's optimum (live R)."""
    _, fit, _, _ = fits[case]
    frame = pd.read_csv(ENGINE / f"{case}.csv")
    frame[[c for c in frame.columns if c != "domain"]].to_csv(tmp_path / "frame.csv", index=False)
    out = tmp_path / "lme4.csv"
    subprocess.run(["Rscript", str(REPO / "tests" / "reference" / "lmer_crosscheck.R"), str(tmp_path / "frame.csv"),
                    str(out), ",".join(f"{t:.17g}" for t in fit.theta)], check=True, capture_output=True)
    table = pd.read_csv(out, keep_default_na=False).set_index("quantity")["value"]
    optimum, at_ours = float(table["reml_criterion"]), float(table["devfun_at_theta"])
    assert at_ours <= optimum + 1e-8 * abs(optimum)

"""Live cross-checks of the pipeline's primary models against lme4/lmerTest.

They need R with lme4 and lmerTest (Debian: r-base-core r-cran-lme4 r-cran-lmertest); CI
installs them. Without R they are skipped with that reason, or fail under
DPO_EVAL_REQUIRE_TOOLS=1 (conftest.py)."""

import shutil
import subprocess

import pandas as pd
import pytest

from conftest import REPO, simulate
from dpo_eval.analysis import models
from dpo_eval.core.codebook import load_codebook
from dpo_eval.ingest import ingest_competencies
from dpo_eval.core.registry import load_registry
from dpo_eval.ingest.pseudonymise import DEMO_SECRET
from dpo_eval.analysis.scoring import scale_scores

RSCRIPT = shutil.which("Rscript")
pytestmark = pytest.mark.requires_tool("R")
COVARIATES = ["role", "years_in_management"]


def lmer(frame_csv, tmp_path) -> pd.DataFrame:
    out = tmp_path / "lmer.csv"
    subprocess.run([RSCRIPT, str(REPO / "tests" / "reference" / "lmer_crosscheck.R"), str(frame_csv), str(out)],
                   check=True, capture_output=True)
    return pd.read_csv(out, keep_default_na=False)


def compare(fit: dict, reference: pd.DataFrame) -> None:
    """Agreement to 1e-4 relative; an estimate near zero (where a relative difference says
    nothing) is held to 1e-4 of its standard error, the precision of lme4's own optimiser."""
    fixed = pd.DataFrame(fit["fixed_effects"])
    for index, row in enumerate(fixed.itertuples(), start=1):
        for quantity, value in (("estimate", row.estimate), ("std_error", row.std_error), ("df", row.df)):
            expected = reference[(reference["quantity"] == quantity) & (reference["term"] == f"x_{index}")]["value"]
            floor = 1e-4 * row.std_error if quantity == "estimate" else 1e-8
            assert value == pytest.approx(float(expected.iloc[0]), rel=1e-4, abs=floor), (row.term, quantity)
    variances = {v["component"]: v["variance"] for v in fit["variance_components"]}
    r_var = reference[reference["quantity"] == "variance"].set_index("term")["value"].astype(float)
    assert variances["institution"] == pytest.approx(r_var["institution"], rel=1e-4, abs=1e-6)
    assert variances["institution:participant"] == pytest.approx(r_var["institution:participant"], rel=1e-4, abs=1e-6)
    assert variances["residual"] == pytest.approx(r_var["Residual"], rel=1e-4)
    r_criterion = float(reference[reference["quantity"] == "reml_criterion"]["value"].iloc[0])
    assert fit["checks"]["reml_criterion"] <= r_criterion * (1 + 1e-6)


@pytest.mark.pipeline
@pytest.mark.parametrize("domain", ["universal", "professional", "subject_methodical"])
def test_demo_study_models_agree_with_lme4(demo_run, tmp_path, domain):
    fit = pd.read_json(demo_run / "results" / "models" / f"{domain}.json", typ="series").to_dict()
    compare(fit, lmer(demo_run / "results" / "models" / f"{domain}.frame.csv", tmp_path))


def test_freshly_generated_study_agrees_with_lme4(tmp_path, demo_config):
    truth = simulate(tmp_path, "--seed", "917", "--schools", "24", "--needs", "20")
    config = dict(demo_config)
    raw = tmp_path / "raw"
    config["waves"] = {w: {**s, "files": [str(raw / f.split("/")[-1]) for f in s["files"]]}
                       for w, s in demo_config["waves"].items()}
    config["registry"] = str(raw / "institutions.csv")
    codebook = load_codebook(config["codebook"])
    result, _ = ingest_competencies(config, codebook, load_registry(config["registry"]), DEMO_SECRET.encode())
    scores = scale_scores(result.responses, {d: len(codebook.items_of(d)) for d in codebook.domains}, 0.8)
    frame = models.model_frame(scores, "professional", COVARIATES)
    fit = models.fit_primary(frame, COVARIATES)
    fit["r_frame"].to_csv(tmp_path / "frame.csv", index=False)
    compare(fit, lmer(tmp_path / "frame.csv", tmp_path))
    assert truth["institutions"]["schools"] == frame["institution"].nunique()

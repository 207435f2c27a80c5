"""The simulation study as a Snakemake workflow (workflow/simulation.smk): a replicate is the
pipeline's own analysis of a generated study, the aggregation rebuilds the README's table."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from conftest import REPO, SMALL_SIMULATION, SNAKEMAKE
from dpo_eval.simulation_studies import coverage as simulation_study
from dpo_eval.simulate import DEMO_SEED

pytestmark = pytest.mark.pipeline


def test_a_replicate_of_the_demo_seed_reproduces_the_pipelines_did_table(demo_run):
    """Generated with the demo's seed and defect rates, a replicate is the demo study itself:
    its DiDs, intervals and p-values are those of the pipeline's results/tables/did.csv."""
    config = simulation_study.load_pipeline_config(REPO / "config" / "config.yaml")
    rows = pd.DataFrame(simulation_study.replicate(DEMO_SEED, 1.0, config, REPO / "config" / "codebook.yaml",
                                                   contamination=1.0)).set_index("domain")
    did = pd.read_csv(demo_run / "results" / "tables" / "did.csv").set_index("domain")
    for column in ("estimate", "std_error", "df", "p_value", "conf_low", "conf_high"):
        pd.testing.assert_series_equal(rows[column], did.loc[rows.index, column], rtol=1e-6,
                                       check_names=False)


def test_workflow_rebuilds_the_coverage_table_from_every_batch(simulation_run):
    results = simulation_run / "results" / "simulation"
    studies = SMALL_SIMULATION["coverage"]["studies"]
    batches = sorted((results / "coverage").glob("*/batch_*.csv"))
    assert [p.relative_to(results / "coverage").as_posix() for p in batches] == [
        "effects/batch_0.csv", "effects/batch_1.csv", "null/batch_0.csv", "null/batch_1.csv"]
    replicates = pd.concat([pd.read_csv(p, converters={"condition": str}) for p in batches])
    assert sorted(set(replicates["seed"])) == [100_000 + i for i in range(studies)]
    summary = pd.read_csv(results / "coverage.csv", converters={"condition": str})
    overall = summary[summary["domain"] == "all"].set_index("condition")
    assert overall.loc["effects", "intervals"] == overall.loc["null", "intervals"] == 3 * studies
    null = replicates[replicates["condition"] == "null"]
    assert overall.loc["null", "rejection_rate"] == (null["p_value"] < 0.05).mean()
    effects = summary[(summary["condition"] == "effects") & (summary["domain"] != "all")]
    # The truth is the generator's effect on the score metric (data/truth.json for the demo seed).
    assert effects["true_did"].tolist() == pytest.approx([0.285, 0.424, 0.238], abs=0.01)
    markdown = (results / "coverage.md").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    header = "| condition | domain | true DiD | mean estimate | 95% CI coverage | p < 0.05 |"
    assert markdown.startswith(header) and header in readme
    assert f"| generator effects | all {3 * studies} intervals | | |" in markdown
    assert f"| null (effect 0) | all {3 * studies} tests | | |" in markdown


def test_batches_are_reproducible_and_independent_of_the_batching(simulation_run, tmp_path):
    """Study i always has seed first_seed + i: one job of two studies equals two jobs of one."""
    config = simulation_study.load_pipeline_config(REPO / "config" / "config.yaml")
    together = simulation_study.replicate_batch("null", 0.0, [100_000, 100_001], config,
                                                REPO / "config" / "codebook.yaml")
    batches = sorted((simulation_run / "results/simulation/coverage/null").glob("batch_*.csv"))
    apart = pd.concat([pd.read_csv(p, converters={"condition": str}) for p in batches], ignore_index=True)
    pd.testing.assert_frame_equal(together, apart, check_dtype=False, rtol=1e-9)


def test_simulation_workflow_is_lint_clean():
    result = subprocess.run([SNAKEMAKE, "--lint", "-s", "workflow/simulation.smk"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr



def test_settings_from_the_command_line_are_merged_key_by_key():
    base = {"coverage": {"studies": 500, "batch_size": 25, "conditions": {"effects": 1.0, "null": 0.0}},
            "power": {"replicates": 400}}
    merged = simulation_study.merge_settings(base, {"coverage": {"studies": 40}})
    assert merged["coverage"] == {"studies": 40, "batch_size": 25, "conditions": {"effects": 1.0, "null": 0.0}}
    assert merged["power"] == {"replicates": 400} and base["coverage"]["studies"] == 500

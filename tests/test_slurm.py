"""The Slurm profile on a real single-node Slurm cluster (tests/slurm/cluster.py): the demo
pipeline and the simulation workflow run through sbatch and give byte for byte the outputs of
the local run.

The cluster needs root and the Debian packages slurmctld, slurmd, slurm-client and munge
(.ci/run installs them). Without them the tests skip with the reason, and fail with it where
DPO_EVAL_REQUIRE_TOOLS=1 (CI), so that CI never passes without having run them.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REQUIRE_TOOLS, SNAKEMAKE, copy_project, small_simulation_config

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
import cluster  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.pipeline]

PROFILE = ["--profile", "workflow/profiles/slurm",
           # The profile's 40 s before the first status check suit a busy site. Here jobs are
           # checked 1 s after a submission (the plugin adds 10 s per check that finds nothing
           # finished): most jobs here take a few seconds, and the queue answers at once.
           "--slurm-init-seconds-before-status-checks", "1"]


def tool_missing(reason: str) -> None:
    message = f"test Slurm cluster unavailable: {reason}"
    if REQUIRE_TOOLS:
        pytest.fail(f"{message}; DPO_EVAL_REQUIRE_TOOLS is set, so this is a failure, not a skip",
                    pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = cluster.missing_requirements()
    if reason:
        tool_missing(reason)
    folder = tmp_path_factory.mktemp("slurm_cluster")
    test_cluster = cluster.start(folder)
    try:
        yield test_cluster
    finally:
        cluster.stop(folder)


def run_on_slurm(slurm_cluster: cluster.Cluster, project: Path, *args: str) -> str:
    result = subprocess.run([SNAKEMAKE, *PROFILE, *args], cwd=project, capture_output=True,
                            text=True, env=slurm_cluster.environment(), timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"snakemake on Slurm failed:\n{output[-6000:]}"
    return output


def submitted_rules(output: str) -> dict[str, int]:
    """Jobs per rule that Snakemake submitted with sbatch (from its log lines)."""
    counts: dict[str, int] = {}
    for rule in re.findall(r"submitted with SLURM jobid \d+ \(log: \S*/slurm_logs/rule_(\w+)/", output):
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def local_rules(output: str) -> set[str]:
    return set(re.findall(r"^localrule (\w+):", output, re.M))


def digests(project: Path, folder: str) -> dict[str, str]:
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((project / folder).rglob("*")) if p.is_file()}


def test_cluster_runs_a_job_and_reports_it(slurm, tmp_path):
    """The helper's cluster is real: sbatch runs a job on the node, squeue shows it finished."""
    env = slurm.environment()
    marker = tmp_path / "ran"
    submitted = subprocess.run(["sbatch", "--parsable", "--partition", cluster.PARTITION, "--wait",
                                "--output", str(tmp_path / "job.out"),
                                "--wrap", f"hostname > {marker}"],
                               capture_output=True, text=True, env=env, timeout=120, check=True)
    job = submitted.stdout.strip().split(";")[0]
    assert marker.read_text().strip()
    state = subprocess.run(["squeue", "--noheader", "--states", "all", "--jobs", job, "--format", "%T"],
                           capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert state == "COMPLETED"


@pytest.mark.slow
def test_demo_pipeline_on_slurm_is_byte_identical_to_the_local_run(slurm, request, tmp_path):
    project = copy_project(tmp_path / "project")
    output = run_on_slurm(slurm, project)
    # Asked for only now: another test worker may be building it meanwhile.
    demo_run = request.getfixturevalue("demo_run")
    submitted = submitted_rules(output)
    # The work ran on the cluster: the ingest, the models and the reports went through sbatch.
    for rule in ("ingest", "score", "fit_domain", "evaluation_report", "institution_report_batch"):
        assert submitted.get(rule), f"{rule} was not submitted to Slurm: {submitted}"
    assert submitted["fit_domain"] == 3 and submitted["evaluation_report"] == 2
    assert not set(submitted) & local_rules(output)
    assert digests(project, "results") == digests(demo_run, "results")


@pytest.mark.slow
def test_simulation_workflow_on_slurm_matches_the_local_run(slurm, request, tmp_path):
    project = copy_project(tmp_path / "project")
    # The targets first: --configfile takes every argument after it.
    output = run_on_slurm(slurm, project, "simulation", "power", "-s", "workflow/simulation.smk",
                          "--configfile", str(small_simulation_config(project)))
    submitted = submitted_rules(output)
    assert submitted.get("coverage_batch") == 4 and submitted.get("power_batch") == 4, submitted
    local = digests(request.getfixturevalue("simulation_run"), "results")
    assert local and digests(project, "results") == local

"""Shared fixtures: the repository, copies of the project to run the pipeline in, and studies
made by the seeded generator."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROJECT_ITEMS = ("Snakefile", "workflow", "config", "reports", "src", "requirements.lock", "requirements.in",
                 "Makefile", "README.md",
                 "environment.yml", "pyproject.toml")
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# With DPO_EVAL_REQUIRE_TOOLS=1 (set by .ci/run) a test that needs a missing system tool fails
# and names it, instead of being skipped: CI must not pass without having run those tests.
REQUIRE_TOOLS = os.environ.get("DPO_EVAL_REQUIRE_TOOLS", "").strip() not in ("", "0")


def _r_with(*packages: str) -> bool:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False
    loads = "; ".join(f"library({name})" for name in packages)
    return subprocess.run([rscript, "-e", loads], capture_output=True).returncode == 0


# Tool name -> (is it available?, how to install it on Debian/Ubuntu).
TOOLS = {
    "pdftotext": (lambda: shutil.which("pdftotext") is not None, "apt-get install poppler-utils"),
    "R": (lambda: _r_with("lme4", "lmerTest", "psych"),
          "Rscript with lme4, lmerTest and psych: apt-get install r-base-core r-cran-lme4 "
          "r-cran-lmertest r-cran-psych"),
    "lavaan": (lambda: _r_with("lavaan"), "Rscript with lavaan: apt-get install r-base-core r-cran-lavaan"),
    "harfbuzz-subset": (lambda: _harfbuzz_subset_loaded(), "apt-get install libharfbuzz-subset0"),
}


def _harfbuzz_subset_loaded() -> bool:
    from weasyprint.text import ffi

    return ffi.harfbuzz_subset is not None
_available: dict[str, bool] = {}


def tool_available(tool: str) -> bool:
    if tool not in _available:
        _available[tool] = TOOLS[tool][0]()
    return _available[tool]


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_tool(name): needs a system tool (pdftotext, R, harfbuzz-subset); "
                            "skipped without it, failed without it under DPO_EVAL_REQUIRE_TOOLS=1")


# The longest test files first: pytest-xdist hands whole files (--dist loadfile) to idle workers
# in collection order (--no-loadscope-reorder, pyproject.toml), so the cluster and rerun tests,
# minutes long and much of it waiting for Slurm, overlap the many short files instead of
# running alone at the end.
SLOWEST_FILES = ("test_slurm.py", "test_reruns.py", "test_pipeline.py", "test_reports.py", "test_delivery.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for mark in item.iter_markers("requires_tool"):
        for tool in mark.args:
            if tool_available(tool):
                continue
            message = f"required tool missing: {tool} ({TOOLS[tool][1]})"
            if REQUIRE_TOOLS:
                pytest.fail(f"{message}; DPO_EVAL_REQUIRE_TOOLS is set, so this is a failure, "
                            "not a skip", pytrace=False)
            pytest.skip(message)


def copy_project(target: Path, raw_dir: Path | None = None) -> Path:
    """A runnable copy of the project in ``target`` (raw data: the demo's, or ``raw_dir``)."""
    target.mkdir(parents=True, exist_ok=True)
    for item in PROJECT_ITEMS:
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, target / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / item)
    shutil.copytree(raw_dir or REPO / "data" / "raw", target / "data" / "raw")
    if raw_dir is not None:
        # A generated study has its own institutions: address the outbox to them.
        from dpo_eval.delivery.recipients import recipients_from_registry

        recipients_from_registry(target / "data" / "raw" / "institutions.csv",
                                 target / "config" / "recipients.csv")
        use_test_secret(target)
    return target


# The public demo secret is refused for anything but the bundled demo study (by checksum), so
# a test that changes the demo's data or generates a study keys it with this secret instead.
TEST_SECRET = "test-secret-not-the-public-demo-one"


def with_test_secret(config: dict, folder: Path) -> dict:
    """``config`` (changed in place and returned) keyed with TEST_SECRET, from a file in
    ``folder`` (which must lie outside the project and its results)."""
    secret = Path(folder) / "pseudonymisation.secret"
    secret.write_text(TEST_SECRET + "\n", encoding="utf-8")
    config["pseudonymisation"]["secret_file"] = str(secret)
    return config


def use_test_secret(project: Path) -> Path:
    """Key a copy of the project with TEST_SECRET (the secret file lies next to the copy)."""
    config_path = project / "config" / "config.yaml"
    config = with_test_secret(yaml.safe_load(config_path.read_text(encoding="utf-8")), project.parent)
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return project


def run_snakemake(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DPO_EVAL_SECRET"}
    result = subprocess.run([SNAKEMAKE, *args], cwd=project, capture_output=True, text=True,
                            env=env, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n"
                             f"{result.stderr[-6000:]}")
    return result


def planned_jobs(project: Path) -> dict[str, int]:
    """Rules and job counts that a dry run would execute ({} when nothing is to be done)."""
    result = run_snakemake(project, "-n", "--cores", "1")
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m.group(1) != "total"}


def simulate(out: Path, *args: str) -> dict:
    """Run the generator as a user would and return its ground truth."""
    subprocess.run([sys.executable, "-m", "dpo_eval.simulate", "--out", str(out / "raw"),
                    "--truth", str(out / "truth.json"),
                    "--codebook", str(REPO / "config" / "codebook.yaml"), *args],
                   check=True, capture_output=True, text=True)
    return json.loads((out / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def demo_truth() -> dict:
    return json.loads((REPO / "data" / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def demo_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    for wave in config["waves"].values():
        wave["files"] = [str(REPO / f) for f in wave["files"]]
    config["needs"]["files"] = [str(REPO / f) for f in config["needs"]["files"]]
    config["registry"] = str(REPO / config["registry"])
    config["codebook"] = str(REPO / config["codebook"])
    return config


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` run once per test session, also when pytest-xdist runs the tests in
    several worker processes: the first worker that needs it builds it under a file lock in the
    folder the workers share, the others wait for it and reuse it (read-only: tests that change
    a project work on a copy). A build that failed is tried again by the next worker."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            done.touch()
    return folder


def _demo_run(folder: Path) -> None:
    run_snakemake(copy_project(folder), "--cores", "2")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The whole pipeline run once on a copy of the project with the demo study."""
    return built_once(tmp_path_factory, "demo_run", _demo_run)


# A generated study of many small teams (2 + Poisson(1) members, before attrition) with one
# school of a single participant: nearly every school report falls back to a pooled level, the
# hardest case for the disclosure control of the whole release. Shared by the tests that need a
# study other than the demo's (one pipeline run per session).
SMALL_TEAMS_STUDY = ("--seed", "41", "--schools", "30", "--team-size", "3", "--needs", "60",
                     "--small-institution", "1", "--contamination", "0")


def _small_teams_run(folder: Path) -> None:
    simulate(folder / "study", *SMALL_TEAMS_STUDY)
    project = copy_project(folder / "project", raw_dir=folder / "study" / "raw")
    run_snakemake(project, "--cores", "2", "results/reports/institutions", "results/reports/evaluation.en.pdf",
                  "results/reports/released_cells.csv", "results/open_data_package.zip")


@pytest.fixture(scope="session")
def small_teams_run(tmp_path_factory) -> Path:
    """The pipeline run once on SMALL_TEAMS_STUDY (the project copy: ``<folder>/project``)."""
    return built_once(tmp_path_factory, "small_teams_run", _small_teams_run) / "project"


# A simulation workflow small enough for the tests: 2 studies per condition in 2 jobs each, and
# a power curve of 2 grid points with 4 replicates in 2 jobs each.
SMALL_SIMULATION = {
    "coverage": {"studies": 2, "batch_size": 1, "truth_draws": 20000},
    "power": {"schools_per_arm": [4, 6], "replicates": 4, "batch_size": 2},
}


def small_simulation_config(project: Path) -> Path:
    path = project / "small_simulation.yaml"
    path.write_text(yaml.safe_dump(SMALL_SIMULATION), encoding="utf-8")
    return path


def _simulation_run(folder: Path) -> None:
    project = copy_project(folder)
    run_snakemake(project, "simulation", "power", "-s", "workflow/simulation.smk", "--cores", "2",
                  "--configfile", str(small_simulation_config(project)))


@pytest.fixture(scope="session")
def simulation_run(tmp_path_factory) -> Path:
    """The simulation workflow (coverage study and power analysis) run locally, small."""
    return built_once(tmp_path_factory, "simulation_run", _simulation_run)

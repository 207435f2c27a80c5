"""DPO_EVAL_REQUIRE_TOOLS=1 (set by .ci/run) turns the skip of a test whose system tool is
missing into a failure that names the tool."""

import os
import subprocess
import sys

from conftest import REPO

# Tests that need R (every test of the module) and pdftotext.
TARGETS = ["tests/test_r_crosscheck.py", "tests/test_pipeline.py::test_no_personal_data_in_any_pdf"]


def pytest_without_tools(tmp_path, require: str) -> subprocess.CompletedProcess:
    """The suite's tests above, run with a PATH on which neither Rscript nor pdftotext exists."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "DPO_EVAL_REQUIRE_TOOLS": require}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *TARGETS],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_missing_tools_fail_the_suite_naming_them_when_required(tmp_path):
    result = pytest_without_tools(tmp_path, "1")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "required tool missing: R (" in result.stdout
    assert "required tool missing: pdftotext (apt-get install poppler-utils)" in result.stdout
    assert " skipped" not in result.stdout.splitlines()[-1]


def test_missing_tools_skip_with_the_reason_otherwise(tmp_path):
    result = pytest_without_tools(tmp_path, "")
    assert result.returncode == 0, result.stdout[-3000:]
    summary = result.stdout.splitlines()[-1]
    assert "skipped" in summary and "failed" not in summary and "passed" not in summary
    assert "required tool missing: pdftotext" in result.stdout


"""A project folder holding a generated study: the set-up the pipeline benchmarks share
(scale.py, slurm_scale.py, report_layout.py, reports_speed.py)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from dpo_eval.release.packages import CODE_ITEMS  # noqa: E402  (what a runnable project holds)

# A generated study is not the bundled demo study, so the public demo secret is refused for it:
# it is keyed with one secret for the whole run (the benchmarks time the steps, not the keys).
RUN_ENVIRONMENT = {**os.environ, "DPO_EVAL_SECRET": os.environ.get("DPO_EVAL_SECRET") or secrets.token_hex(32)}


def snakemake(project: Path, *args: str) -> None:
    """The project's workflow with ``args``; stops the benchmark with Snakemake's message on failure."""
    command = [str(Path(sys.executable).with_name("snakemake")), *args]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, env=RUN_ENVIRONMENT)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")


def generated_project(project: Path, schools: int, seed: int, municipalities: int | None = None,
                      simulate: bool = True) -> Path:
    """``project`` with this repository's code and configuration and, unless ``simulate`` is
    false (a rerun on the study already there), a study of ``schools`` schools drawn by the
    generator with ``seed`` (its truth beside the project), with the recipients of its registry."""
    from dpo_eval.delivery.recipients import recipients_from_registry

    project.mkdir(parents=True, exist_ok=True)
    for item in CODE_ITEMS:
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, project / item, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy2(source, project / item)
    if simulate:
        subprocess.run([sys.executable, "-m", "dpo_eval.simulate", "--seed", str(seed), "--schools", str(schools),
                        "--out", str(project / "data" / "raw"), "--truth", str(project.parent / "truth.json"),
                        "--codebook", str(REPO / "config" / "codebook.yaml"),
                        *(["--municipalities", str(municipalities)] if municipalities else [])],
                       check=True, capture_output=True, text=True)
    recipients_from_registry(project / "data" / "raw" / "institutions.csv", project / "config" / "recipients.csv")
    return project

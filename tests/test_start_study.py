"""README, "Start your own study": its five steps run exactly as written in a fresh clone (with
the researcher's edits of steps 3 and 4 in between), and the study made from the demo's exports
by `dpo-eval new` and `draft-codebook` gives the demo's tables byte for byte.

One pipeline run, shared by the tests of this file (slow tier: `make test-slow`, run by CI)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, built_once
from test_cli import DEMO_DOMAINS, DEMO_ITEM_PREFIX, SHIPPED, named

pytestmark = [pytest.mark.slow, pytest.mark.pipeline]
SECTION = "## Start your own study"


def readme_steps(readme: str) -> list[str]:
    """The shell blocks of the section, one per numbered step."""
    section = readme.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    steps = re.split(r"\n(?=\d\. )", section)[1:]
    blocks = [re.findall(r"```sh\n(.*?)```", step, re.S) for step in steps]
    assert [len(b) for b in blocks] == [1] * 5, "five numbered steps, one shell block each"
    return ["\n".join(line.strip() for line in b[0].splitlines()) for b in blocks]


def run_shell(script: str, cwd: Path) -> str:
    """``script`` under bash -e in ``cwd`` with the project's environment first on PATH (as
    after `source .venv/bin/activate`); returns the folder it ended in."""
    env = {k: v for k, v in os.environ.items() if k not in ("DPO_EVAL_SECRET", "VIRTUAL_ENV")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(["bash", "-e", "-c", f"{script}\npwd"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{script}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout.strip().splitlines()[-1]


def name_like_the_demo(study: Path) -> None:
    """Step 3's edits as the researcher of the demo study makes them: the domains, items and
    need areas named; step 4's: the demo's policy for its hand-typed out-of-range values."""
    codebook_path = study / "config" / "codebook.yaml"
    draft = yaml.safe_load(codebook_path.read_text(encoding="utf-8"))
    codebook = named(draft, DEMO_DOMAINS, DEMO_ITEM_PREFIX, [a["id"] for a in SHIPPED["need_areas"]])
    codebook["domains"] = SHIPPED["domains"]
    codebook_path.write_text(yaml.safe_dump(codebook, allow_unicode=True, sort_keys=False), encoding="utf-8")
    config_path = study / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["analysis"]["domains"] = [DEMO_DOMAINS[d] for d in config["analysis"]["domains"]]
    config["cleaning"]["out_of_range"] = "missing"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _walk_through(folder: Path) -> None:
    clone = folder / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True,
                   capture_output=True, text=True)
    steps = readme_steps((clone / "README.md").read_text(encoding="utf-8"))
    study = Path(run_shell("\n".join(steps[:3]), clone))
    name_like_the_demo(study)
    run_shell("\n".join(steps[3:]), study)
    (folder / "study_path").write_text(str(study), encoding="utf-8")


@pytest.fixture(scope="module")
def started_study(tmp_path_factory) -> Path:
    folder = built_once(tmp_path_factory, "readme_study", _walk_through)
    return Path((folder / "study_path").read_text(encoding="utf-8"))


def test_the_readme_steps_run_as_written_in_a_fresh_clone(started_study):
    assert started_study.name == "my-study"
    drafted = yaml.safe_load((started_study / "config" / "codebook.yaml").read_text(encoding="utf-8"))
    assert len(drafted["items"]) == len(SHIPPED["items"])
    assert (started_study / "results" / "reports" / "evaluation.ru.pdf").is_file()


def test_the_drafted_study_gives_the_demos_tables_byte_for_byte(started_study, demo_run):
    expected = sorted(p.name for p in (demo_run / "results" / "tables").glob("*.csv"))
    produced = sorted(p.name for p in (started_study / "results" / "tables").glob("*.csv"))
    assert produced == expected and len(expected) >= 15
    differing = [name for name in expected
                 if (started_study / "results" / "tables" / name).read_bytes()
                 != (demo_run / "results" / "tables" / name).read_bytes()]
    assert differing == []

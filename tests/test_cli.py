"""The `dpo-eval` command: its conventions, `new`, `draft-codebook` on the demo exports and on a
generated 7-point study, and `check` (every planted problem in one pass, the demo's summary).
No pipeline run here: the README's walk-through with a full run is in test_start_study.py."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_project, simulate, use_test_secret

DPO_EVAL = str(Path(sys.executable).with_name("dpo-eval"))
SHIPPED = yaml.safe_load((REPO / "config" / "codebook.yaml").read_text(encoding="utf-8"))
# What the researcher names after the draft (ids only they can choose): the candidate domains in
# the order drafted, and the item ids' prefix per domain (items numbered within their domain).
DEMO_DOMAINS = {"domain1": "universal", "domain2": "professional",
                "domain3": "subject_methodical", "domain4": "communication"}
DEMO_ITEM_PREFIX = {"universal": "uk", "professional": "pk", "subject_methodical": "pm",
                    "communication": "cm"}


def dpo_eval(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DPO_EVAL, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def drafted(exports: list[Path], project: Path) -> dict:
    """`dpo-eval draft-codebook` run as a user runs it; the draft it wrote, loaded."""
    result = dpo_eval("draft-codebook", *map(str, exports), "--project", str(project),
                      "--output", str(project / "draft.yaml"), "--no-config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load((project / "draft.yaml").read_text(encoding="utf-8"))


def named(draft: dict, domains: dict[str, str], item_prefix: dict[str, str],
          need_ids: list[str]) -> dict:
    """The draft after the researcher named its domains, items and need areas."""
    result = copy.deepcopy(draft)
    result["domains"] = {domains[key]: value for key, value in result["domains"].items()}
    counts: dict[str, int] = {}
    renamed = {}
    for item in result["items"]:
        item["domain"] = domains[item["domain"]]
        counts[item["domain"]] = counts.get(item["domain"], 0) + 1
        renamed[item["id"]] = f"{item_prefix[item['domain']]}{counts[item['domain']]}"
        item["id"] = renamed[item["id"]]
    for spec in result["waves"].values():
        for key in ("not_asked", "retrospective"):
            if key in spec:
                spec[key] = [domains.get(entry, renamed.get(entry, entry)) for entry in spec[key]]
    for area, new_id in zip(result["need_areas"], need_ids):
        area["id"] = new_id
    return result


def without_english(entries: list[dict]) -> list[dict]:
    return [{k: v for k, v in entry.items() if k != "en"} for entry in entries]


@pytest.fixture(scope="module")
def demo_draft(tmp_path_factory) -> dict:
    project = copy_project(tmp_path_factory.mktemp("draft_demo"))
    return drafted(sorted((project / "data" / "raw").iterdir()), project)


def test_one_convention_for_help_exit_codes_and_messages(tmp_path):
    overview = dpo_eval("--help")
    assert overview.returncode == 0
    for command in ("new", "draft-codebook", "check", "simulate", "fit", "plan", "send", "resolve"):
        assert f"    {command}" in overview.stdout, command
        help_text = dpo_eval(command, "--help")
        assert help_text.returncode == 0, (command, help_text.stderr)
        assert f"usage: dpo-eval {command}" in help_text.stdout, (command, help_text.stdout)
    assert dpo_eval("no-such-command").returncode == 2
    outside = dpo_eval("check", cwd=tmp_path)
    assert outside.returncode == 1
    assert outside.stderr.startswith("ERROR: ") and "Traceback" not in outside.stderr
    assert "is not inside a dpo_eval project" in outside.stderr


def test_new_writes_a_study_folder_and_refuses_to_overwrite(tmp_path):
    result = dpo_eval("new", "study", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = tmp_path / "study"
    assert (study / "config" / "config.yaml").is_file() and (study / "Snakefile").is_file()
    assert (study / "src" / "dpo_eval" / "cli" / "__init__.py").is_file()
    assert list((study / "data" / "raw").iterdir()) == []
    assert "TODO" in (study / "config" / "config.yaml").read_text(encoding="utf-8")
    assert "dpo-eval draft-codebook" in (study / "README.md").read_text(encoding="utf-8")
    again = dpo_eval("new", "study", cwd=tmp_path)
    assert again.returncode == 1 and "exists and is not empty" in again.stderr


def test_template_fields_are_the_demo_codebooks():
    from dpo_eval.cli.drafting import template_fields

    template = template_fields()
    assert template["fields"] == SHIPPED["fields"]
    assert template["missing_codes"] == SHIPPED["missing_codes"]


def test_draft_of_the_demo_exports_reproduces_the_shipped_codebook(demo_draft):
    """After naming domains, items and need areas, the draft equals the shipped codebook in its
    items (domain, scale, reverse key, Russian text), scales, waves and need areas; what differs
    is what only the researcher can write: the English texts and the domains' names."""
    draft = named(demo_draft, DEMO_DOMAINS, DEMO_ITEM_PREFIX,
                  [area["id"] for area in SHIPPED["need_areas"]])
    assert without_english(draft["items"]) == without_english(SHIPPED["items"])
    assert {i["en"] for i in draft["items"]} == {"TODO"}
    assert draft["scales"] == SHIPPED["scales"]
    assert draft["waves"] == SHIPPED["waves"]
    assert draft["retrospective_marker"] == SHIPPED["retrospective_marker"]
    assert without_english(draft["need_areas"]) == without_english(SHIPPED["need_areas"])
    assert list(draft["domains"]) == list(SHIPPED["domains"])
    assert draft["fields"] == SHIPPED["fields"]
    assert draft["missing_codes"] == SHIPPED["missing_codes"]


# A 7-point agreement scale (as some forms use), written here rather than taken from the
# drafter's list of known scales.
AGREE7 = ["Совершенно не согласен", "Не согласен", "Скорее не согласен",
          "Ни согласен, ни не согласен", "Скорее согласен", "Согласен", "Совершенно согласен"]


def seven_point_codebook(path: Path) -> dict:
    codebook = yaml.safe_load((REPO / "config" / "codebook.yaml").read_text(encoding="utf-8"))
    codebook["scales"]["agree7"] = {
        value: {"ru": label, "en": f"point {value}", "variants": [label.replace("согласен", "согласна")]}
        for value, label in enumerate(AGREE7, start=1)}
    for number, item in enumerate(codebook["items"], start=1):
        item.update(scale="agree7", id=f"q{number:02d}",
                    ru=f"Новая формулировка {number}: {item['ru'].lower()}")
    path.write_text(yaml.safe_dump(codebook, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return codebook


def test_draft_of_a_generated_seven_point_study_finds_its_scale_and_items(tmp_path):
    truth = seven_point_codebook(tmp_path / "codebook7.yaml")
    subprocess.run([sys.executable, "-m", "dpo_eval.simulate", "--seed", "7", "--schools", "40",
                    "--out", str(tmp_path / "raw"), "--truth", str(tmp_path / "truth.json"),
                    "--codebook", str(tmp_path / "codebook7.yaml")],
                   check=True, capture_output=True, text=True)
    project = copy_project(tmp_path / "project", tmp_path / "raw")
    draft = drafted(sorted((project / "data" / "raw").iterdir()), project)
    assert list(draft["scales"]) == ["agree7", "importance5"]
    assert [draft["scales"]["agree7"][v]["ru"] for v in range(1, 8)] == AGREE7
    assert [i["ru"] for i in draft["items"]] == [i["ru"] for i in truth["items"]]
    assert {i["scale"] for i in draft["items"]} == {"agree7"}
    assert [i["reverse"] for i in draft["items"]] == [i["reverse"] for i in truth["items"]]
    # The candidate domains are the true ones: the same items together, in the same order.
    drafted_groups = [[i["ru"] for i in draft["items"] if i["domain"] == d] for d in draft["domains"]]
    true_groups = [[i["ru"] for i in truth["items"] if i["domain"] == d] for d in truth["domains"]]
    assert drafted_groups == true_groups


def plant_problems(project: Path) -> list[str]:
    """A wrong address in the recipients, a reworded item in the pre wave, an unknown label in
    the needs assessment: three stages of the pipeline (DAG build, two ingest steps), each of
    which would stop a run on its own; and a domain the schema does not know in
    analysis.domains (which stops the DAG build before anything else)."""
    config_path = project / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["analysis"]["domains"][2] = "domain3"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    recipients = project / "config" / "recipients.csv"
    text = recipients.read_text(encoding="utf-8")
    recipients.write_text(text.replace("dpo@amgpgu.example.org", "dpo.amgpgu.example.org", 1), encoding="utf-8")
    pre = project / "data" / "raw" / "pre_entry_google.csv"
    pre.write_text(pre.read_text(encoding="utf-8").replace(
        "[Я могу оценить методическое качество урока]", "[Я оцениваю качество урока]", 1), encoding="utf-8")
    needs = project / "data" / "raw" / "needs_assessment_google.csv"
    lines = needs.read_text(encoding="utf-8").split("\n")
    lines[5] = lines[5].replace("Скорее важно", "Весьма важно", 1)
    needs.write_text("\n".join(lines), encoding="utf-8")
    return ["key 'analysis.domains.2': 'domain3' is not one of",
            "'dpo.amgpgu.example.org' is not a valid e-mail address",
            "no column for item pm2 'Я могу оценить методическое качество урока' of wave pre",
            "row 6, column 'Оцените важность", "'Весьма важно' is not a label of scale 'importance5'"]


def test_check_lists_every_planted_problem_in_one_pass(tmp_path):
    project = use_test_secret(copy_project(tmp_path / "project"))
    expected = plant_problems(project)
    result = dpo_eval("check", "--no-dry-run", cwd=project / "data")
    assert result.returncode == 1
    assert result.stderr.startswith("4 problem(s) in "), result.stderr
    for words in expected:
        assert words in result.stderr, (words, result.stderr)
    assert "Traceback" not in result.stderr
    assert not (project / "results").exists()


def test_check_summarises_the_demo_study(tmp_path):
    project = copy_project(tmp_path / "project")
    result = dpo_eval("check", "--no-dry-run", "--project", str(project))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("no problems found")
    assert lines[1].split()[:3] == ["pre", "250", "rows,"]
    assert any(line.startswith("participants: 251, matched across waves: ") for line in lines)
    assert "schools: 60 in the registry, 60 with participants; municipalities: 14" in lines
    assert "needs assessment: 300 respondents" in lines
    assert "recipients: 62 (60 institution, 2 evaluation)" in lines
    assert "pipeline: not dry-run (--no-dry-run)" in lines
    assert len(lines) <= 20
    assert not (project / "results").exists()


def test_bash_completion_completes_commands_and_options():
    script = dpo_eval("completion", "bash")
    assert script.returncode == 0
    probe = (f'{script.stdout}\nCOMP_WORDS=(dpo-eval dr); COMP_CWORD=1; _dpo_eval; echo "${{COMPREPLY[@]}}"\n'
             'COMP_WORDS=(dpo-eval check --no); COMP_CWORD=2; _dpo_eval; echo "${COMPREPLY[@]}"\n')
    result = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["draft-codebook", "--no-dry-run"]


def test_draft_names_the_field_values_its_labels_do_not_know(tmp_path):
    project = copy_project(tmp_path / "project")
    pre = project / "data" / "raw" / "pre_entry_google.csv"
    pre.write_text(pre.read_text(encoding="utf-8").replace(
        "Совместная программа АмГПГУ и ХК ИРО", "Программа Б"), encoding="utf-8")
    result = dpo_eval("draft-codebook", *map(str, sorted((project / "data" / "raw").iterdir())),
                      "--project", str(project), "--output", "-", "--no-config")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if "not among its labels" in line]
    assert notes == ["# fields.cohort: 1 value(s) found that are not among its labels: "
                     "'Программа Б'; TODO: add them as labels (or variants of a label)"]

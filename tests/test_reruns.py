"""Reruns that are always right: every rule declares the package modules its script runs and
receives the configuration it reads through params, so that an edit of either reruns exactly
the rules that depend on it (shown with dry runs on the results of the session's demo run).

What "depends" means is established here independently of workflow/rules/common.smk: the
modules a script runs are the `dpo_eval` modules loaded by executing its import statements; the
configuration a rule reads is the table CONFIG_READERS below; what lies downstream of a rule is
read from Snakemake's own job listing (which outputs feed which inputs).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_project, planned_jobs, run_snakemake, use_test_secret

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
# The second entry point (simulation and power studies) and the targets that build all of it.
SIMULATION = ("-s", "workflow/simulation.smk", "simulation", "power")

# Run in a fresh interpreter: execute only the import statements of each workflow script and
# list the dpo_eval modules that this loads (with the package __init__ files).
_RUNTIME_IMPORTS = r"""
import ast, json, sys
from pathlib import Path
root = Path(sys.argv[1]).resolve()
sys.path.insert(0, str(root / "src"))
found = {}
for script in sorted((root / "workflow" / "scripts").glob("*.py")):
    for name in [n for n in sys.modules if n == "dpo_eval" or n.startswith("dpo_eval.")]:
        del sys.modules[name]
    tree = ast.parse(script.read_text(encoding="utf-8"))
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(body=imports, type_ignores=[]), str(script), "exec"), {})
    found[script.stem] = sorted(
        Path(module.__file__).resolve().relative_to(root).as_posix()
        for name, module in sys.modules.items()
        if (name == "dpo_eval" or name.startswith("dpo_eval.")) and getattr(module, "__file__", None))
print(json.dumps(found))
"""


def rule_scripts(files=RULE_FILES) -> dict[str, str]:
    """Rule name -> the workflow script it runs, from the rule files."""
    scripts = {}
    for path in files:
        for block in re.split(r"(?m)^(?=rule )", path.read_text(encoding="utf-8")):
            name = re.match(r"rule (\w+):", block)
            script = re.search(r'script:\s*\n\s*"(?:\.\./)?scripts/(\w+)\.py"', block)
            if name and script:
                scripts[name.group(1)] = script.group(1)
    return scripts


def runtime_imports(project: Path) -> dict[str, set[str]]:
    result = subprocess.run([sys.executable, "-c", _RUNTIME_IMPORTS, str(project)],
                            capture_output=True, text=True, check=True)
    return {script: set(files) for script, files in json.loads(result.stdout).items()}


def job_listing(project: Path, *args: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Inputs and outputs per rule, as Snakemake lists the jobs of a forced dry run."""
    result = run_snakemake(project, "-n", "--forceall", "--cores", "1", *args)
    inputs: dict[str, set[str]] = {}
    outputs: dict[str, set[str]] = {}
    rule = None
    for line in (result.stdout + result.stderr).splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header:
            rule = header.group(1)
            inputs.setdefault(rule, set())
            outputs.setdefault(rule, set())
            continue
        field = re.match(r"^\s+(input|output): (.*)$", line)
        if field and rule:
            target = inputs if field.group(1) == "input" else outputs
            target[rule] |= {os.path.normpath(f) for f in field.group(2).split(", ")}
        elif not line.startswith(" "):
            rule = None
    return inputs, outputs


def downstream(inputs: dict[str, set[str]], outputs: dict[str, set[str]], rules: set[str]) -> set[str]:
    """``rules`` and every rule that consumes, directly or not, one of their outputs."""
    def feeds(producer: str, consumer: str) -> bool:
        return any(i == o or i.startswith(o + "/") for o in outputs[producer] for i in inputs[consumer])

    found, pending = set(rules), list(rules)
    while pending:
        producer = pending.pop()
        for consumer in inputs:
            if consumer not in found and feeds(producer, consumer):
                found.add(consumer)
                pending.append(consumer)
    return found


@pytest.fixture(scope="module")
def fresh_project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("fresh"))


@pytest.fixture(scope="module")
def fresh_inputs(fresh_project) -> dict[str, set[str]]:
    """Inputs of every rule: the default target's and `send` (never part of a run)."""
    return job_listing(fresh_project, "all", "send")[0]


def test_every_rule_lists_the_package_modules_its_script_runs(fresh_project, fresh_inputs):
    """Fails when a rule's script uses a package module that the rule's inputs do not list
    (an edit of that module would then rerun nothing): the Snakefile's rules and those of
    workflow/simulation.smk."""
    imports = runtime_imports(fresh_project)
    pipeline = rule_scripts()
    simulation = rule_scripts([REPO / "workflow" / "simulation.smk"])
    assert set(pipeline.values()) | set(simulation.values()) == set(imports), \
        "a script of workflow/scripts/ that no rule runs, or a rule whose script is missing"
    simulation_inputs = job_listing(fresh_project, *SIMULATION)[0]
    for scripts, inputs in ((pipeline, fresh_inputs), (simulation, simulation_inputs)):
        for rule, script in scripts.items():
            missing = imports[script] - inputs[rule]
            assert not missing, (f"rule {rule} runs workflow/scripts/{script}.py, which imports "
                                 f"{sorted(missing)}, but does not list them as inputs")
    # Every step module is run by some rule, and every script imports exactly one step module.
    step_modules = {f for script in pipeline.values() for f in imports[script]
                    if f.startswith("src/dpo_eval/steps/")}
    # ... named after the rules file of its rules (workflow/rules/ingest.smk: steps/ingest_rules.py).
    stages = ("ingest", "analysis", "reports", "delivery")
    assert step_modules == {f"src/dpo_eval/steps/{m}.py" for m in
                            ("__init__", *(f"{stage}_rules" for stage in stages))}
    # ... and a script that calls an adapter calls the function named after its rule.
    for stage in stages:
        for rule, script in rule_scripts([REPO / "workflow" / "rules" / f"{stage}.smk"]).items():
            text = (REPO / "workflow" / "scripts" / f"{script}.py").read_text(encoding="utf-8")
            if "dpo_eval.steps" in text:
                assert f"{stage}_rules.{rule}(" in text, (rule, script)


def test_the_evaluation_report_depends_on_every_package_file(fresh_project, fresh_inputs):
    """It prints the digest of all package files, so any edit must rerun it."""
    inputs = fresh_inputs
    package = {p.relative_to(fresh_project).as_posix()
               for p in (fresh_project / "src" / "dpo_eval").rglob("*")
               if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts}
    assert package <= inputs["evaluation_report"]


# --------------------------------------------------------------------------- dry-run acceptance

def _toggle(first, second):
    return lambda value: second if value == first else first


# Configuration keys (dotted; a key also stands for the keys under it) that the analysis and
# the reports read, with the rules reading them directly and, where the generic edit would not
# be valid under the schema, how to edit them.
CONFIG_READERS: dict[str, tuple[set[str], object]] = {
    "study.title": ({"evaluation_report"}, None),
    "study.program": ({"evaluation_report", "institution_report_batch"}, None),
    "study.report_date": ({"evaluation_report", "institution_report_batch", "outbox"},
                          lambda value: "2026-04-02"),
    # Read by the evaluation report only (its summary, design section and limitations).
    "study.hypothesis": ({"evaluation_report"}, None),
    "study.primary_outcome": ({"evaluation_report"}, None),
    "study.program_description": ({"evaluation_report"}, None),
    "study.wave_dates": ({"evaluation_report"}, lambda value: "2025-01-02"),
    "cleaning.out_of_range": ({"ingest"}, _toggle("missing", "error")),
    "cleaning.unknown_labels": ({"ingest"}, _toggle("error", "missing")),
    "cleaning.near_miss_matching": ({"ingest"}, None),
    "cleaning.careless.policy": ({"ingest", "score", "fit_domain", "fit_combined", "invariance"},
                                 _toggle("flag", "exclude")),
    "cleaning.careless.min_even_odd": ({"ingest"}, lambda value: 0.1 if value is None else None),
    "cleaning.careless": ({"ingest"}, None),
    "cleaning.unknown_columns": ({"ingest", "ingest_needs"}, _toggle("error", "warning")),
    "cleaning.invalid_covariates": ({"ingest"}, _toggle("error", "missing")),
    "cleaning.code_collisions": ({"ingest"}, _toggle("error", "separate")),
    "cleaning.cohort_conflicts": ({"ingest"}, _toggle("error", "first")),
    "cleaning.without_cohort": ({"ingest"}, _toggle("exclude", "error")),
    "cleaning": ({"ingest"}, None),
    "pseudonymisation.secret_file": ({"ingest", "ingest_needs"},
                                     lambda value: "/nonexistent/secret" if value is None else None),
    "pseudonymisation": ({"ingest", "ingest_needs"}, None),
    "waves.post.sheet": ({"ingest"}, None),
    "analysis.min_item_share": ({"score"}, None),
    "analysis.covariates": ({"fit_domain", "fit_combined"}, None),
    # The decision rules of the invariance step; the evaluation report prints them (provenance).
    "analysis.invariance": ({"invariance", "evaluation_report"}, None),
    # Fewer domains: fewer model jobs, the domain lists of the combined model, the tables and
    # the reports change.
    "analysis.domains": ({"score", "fit_combined", "collect_models", "disclosure_control", "invariance", "evaluation_report",
                          "institution_report_batch"}, None),
    # Fewer languages: no new job; the disclosure control, the outbox and the reproduction
    # package lose a report.
    "reports.languages": ({"disclosure_control", "outbox", "reproduction_package"}, None),
    "reports": ({"evaluation_report", "institution_report_batch"}, None),
    # The disclosure threshold also sets the k of the data packages.
    "reports.min_cell": ({"disclosure_control", "evaluation_report", "institution_report_batch",
                          "reproduction_package", "open_data_package"}, None),
    "delivery.sender": ({"outbox"}, None),
    "delivery.sender_name": ({"outbox"}, None),
    # Schools sent nothing: the outbox checks the list (and records the configuration's digest).
    "delivery.no_recipient": ({"outbox"}, lambda value: ["SCH001"]),
}
# Keys the schema allows with a default, absent from the demo configuration: set to their
# default for the comparison (the edit then makes them differ from it).
OPTIONAL_DEFAULTS = {"cleaning.unknown_columns": "error", "cleaning.invalid_covariates": "error",
                     "cleaning.code_collisions": "error", "cleaning.cohort_conflicts": "error",
                     "delivery.no_recipient": []}
# Read only by `send` (not part of a run): editing them all at once reruns nothing.
SEND_ONLY = ("delivery.smtp", "delivery.ledger")
SEND_ONLY_EDITS = {"delivery.smtp.security": _toggle("starttls", "ssl")}
# Paths of input files: their content is tracked as an input (tests/test_pipeline.py).
FILE_KEYS = ("registry", "codebook", "waves.pre.files", "waves.post.files", "waves.followup.files",
             "needs.files", "delivery.recipients")


def leaves(config: dict, prefix: str = "") -> dict[str, object]:
    """Every setting under its dotted key; lists are one setting."""
    found = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            found.update(leaves(value, dotted + "."))
        else:
            found[dotted] = value
    return found


def covering(key: str, table) -> str | None:
    """The most specific entry of ``table`` equal to ``key`` or a prefix of it."""
    matches = [entry for entry in table if key == entry or key.startswith(entry + ".")]
    return max(matches, key=len) if matches else None


def generic_edit(key: str, value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value * 0.9, 6)
    if isinstance(value, str):
        return "x" + value
    if isinstance(value, list) and len(value) > 1:
        return value[:-1]
    raise AssertionError(f"no way to edit {key} = {value!r}: add an edit to CONFIG_READERS")


def set_key(config: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for part in parents:
        config = config[part]
    config[last] = value


def edited_config_jobs(project: Path, changes: dict[str, object]) -> dict[str, int]:
    path = project / "config" / "config.yaml"
    before, text = path.stat(), path.read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    for key, value in changes.items():
        set_key(config, key, value)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    try:
        return planned_jobs(project)
    finally:
        path.write_text(text, encoding="utf-8")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def edited_file_jobs(project: Path, relative: str) -> dict[str, int]:
    """As tests/test_pipeline.py's edited(): a blank line appended, newer than every output."""
    path = project / relative
    before, content = path.stat(), path.read_bytes()
    path.write_bytes(content + b"\n")
    later = time.time() + 5
    os.utime(path, (later, later))
    try:
        return planned_jobs(project)
    finally:
        path.write_bytes(content)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.fixture(scope="module")
def workers(demo_run, tmp_path_factory) -> list[Path]:
    """Two copies of the demo run (results and Snakemake's records, times preserved), so that
    dry runs of different edits can run side by side without seeing each other's edits."""
    assert planned_jobs(demo_run) == {}
    copies = []
    for index in range(2):
        target = tmp_path_factory.mktemp(f"worker{index}") / "project"
        shutil.copytree(demo_run, target, symlinks=True)
        copies.append(target)
    return copies


@pytest.fixture(scope="module")
def dag(demo_run):
    return job_listing(demo_run)


def in_parallel(workers: list[Path], tasks: dict[str, object], run) -> dict[str, dict[str, int]]:
    """``run(project, task)`` for every task, the tasks spread over the worker copies."""
    names = sorted(tasks)
    shares = [names[i::len(workers)] for i in range(len(workers))]

    def work(project: Path, share: list[str]) -> dict[str, dict[str, int]]:
        return {name: run(project, tasks[name]) for name in share}

    with ThreadPoolExecutor(len(workers)) as pool:
        results = pool.map(work, workers, shares)
    return {name: jobs for part in results for name, jobs in part.items()}


def expected_rules(dag, direct: set[str]) -> set[str]:
    inputs, outputs = dag
    return downstream(inputs, outputs, direct) | ({"all"} if direct else set())


# The keys whose edits the default tier replays (the slow tier replays every key): one or more per
# rule that reads configuration, and the send-only group.
SAMPLE_KEYS = {"analysis.min_item_share", "analysis.covariates", "cleaning.careless.policy",
               "reports.min_cell", "study.report_date", "(send only)"}


@pytest.mark.pipeline
def test_editing_sample_configuration_keys_reruns_exactly_the_rules_that_read_them(demo_run, workers, dag):
    check_configuration_edits(demo_run, workers, dag, SAMPLE_KEYS)


@pytest.mark.pipeline
@pytest.mark.slow
def test_editing_each_configuration_key_reruns_exactly_the_rules_that_read_it(demo_run, workers, dag):
    check_configuration_edits(demo_run, workers, dag)


def check_configuration_edits(demo_run, workers, dag, sample: set[str] | None = None) -> None:
    """Every configuration key (or those of ``sample``) edited in turn: the dry run plans exactly
    the rules that read it and what depends on them."""
    config = yaml.safe_load((demo_run / "config" / "config.yaml").read_text(encoding="utf-8"))
    tasks, expected, send_only = {}, {}, {}
    settings = leaves(config)
    for key, default in OPTIONAL_DEFAULTS.items():
        settings.setdefault(key, default)
    for key, value in settings.items():
        if covering(key, FILE_KEYS):
            continue
        if covering(key, SEND_ONLY):
            edit = SEND_ONLY_EDITS.get(key)
            send_only[key] = edit(value) if edit else ("x" if value is None else generic_edit(key, value))
            continue
        entry = covering(key, CONFIG_READERS)
        assert entry, f"configuration key {key} is in no table of this test: which rules read it?"
        readers, edit = CONFIG_READERS[entry]
        new_value = edit(value) if edit else generic_edit(key, value)
        assert new_value != value, key
        tasks[key] = {key: new_value}
        expected[key] = expected_rules(dag, readers)
    tasks["(send only)"] = send_only
    expected["(send only)"] = set()
    assert SAMPLE_KEYS <= set(tasks)
    if sample is not None:
        tasks = {key: tasks[key] for key in sample}

    planned = in_parallel(workers, tasks, edited_config_jobs)
    wrong = {key: {"planned": sorted(planned[key]), "expected": sorted(expected[key])}
             for key in tasks if set(planned[key]) != expected[key]}
    assert not wrong, json.dumps(wrong, indent=1)
    domains = len(config["analysis"]["domains"])
    assert planned["analysis.covariates"]["fit_domain"] == domains
    assert planned["analysis.min_item_share"]["fit_domain"] == domains  # scores change


def module_expectations(demo_run, dag) -> dict[str, set[str]]:
    """Package file -> the rules an edit of it must rerun: those whose script imports it (at run
    time, in a fresh interpreter), the evaluation report (it prints the digest of every package
    file), and everything downstream of them."""
    scripts = rule_scripts()
    imports = runtime_imports(demo_run)
    package = sorted(p.relative_to(demo_run).as_posix()
                     for p in (demo_run / "src" / "dpo_eval").rglob("*")
                     if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts)
    # Data files read by a rule (not imported): the data dictionary's specification.
    readers_of_data = {"src/dpo_eval/core/data_dictionary.yaml": {"data_dictionary"}}
    expected = {}
    for module in package:
        # Rules of the default target's DAG (not `send`, which a run never includes).
        direct = {rule for rule, script in scripts.items() if module in imports[script] and rule in dag[0]}
        direct |= readers_of_data.get(module, set())
        # The evaluation report prints the digest of every package file.
        direct.add("evaluation_report")
        expected[module] = expected_rules(dag, direct)
    return expected


def check_module_edits(workers, expected: dict[str, set[str]], modules: list[str]) -> dict[str, dict[str, int]]:
    planned = in_parallel(workers, {m: m for m in modules}, edited_file_jobs)
    wrong = {module: {"planned": sorted(planned[module]), "expected": sorted(expected[module])}
             for module in modules if set(planned[module]) != expected[module]}
    assert not wrong, json.dumps(wrong, indent=1)
    return planned


@pytest.mark.pipeline
def test_every_package_file_is_an_input_of_exactly_the_rules_that_run_it(demo_run, dag):
    """What Snakemake compares to decide a rerun, for every package file at once: the inputs of
    each job in one forced dry run. (Replaying the edits themselves: the tests below.)"""
    expected = module_expectations(demo_run, dag)
    inputs = dag[0]
    declared = {module: {rule for rule, files in inputs.items() if module in files} for module in expected}
    # Every file is an input of some rule (at least the evaluation report), and an edit of it
    # reruns (the declaring rules and what follows them) exactly what it must.
    wrong = {module: sorted(declared[module]) for module in expected
             if not declared[module] or expected_rules(dag, declared[module]) != expected[module]}
    assert not wrong, json.dumps(wrong, indent=1)


@pytest.mark.pipeline
def test_editing_one_module_of_each_subpackage_reruns_exactly_the_rules_that_run_it(demo_run, workers, dag):
    expected = module_expectations(demo_run, dag)
    first_of_each = {}
    for module in sorted(expected):
        first_of_each.setdefault(Path(module).parent.as_posix(), module)
    sample = sorted({*first_of_each.values(), "src/dpo_eval/analysis/models.py",
                     "src/dpo_eval/core/data_dictionary.yaml"})
    planned = check_module_edits(workers, expected, sample)
    assert planned["src/dpo_eval/analysis/models.py"]["fit_domain"] == 3


@pytest.mark.pipeline
@pytest.mark.slow
def test_editing_each_package_module_reruns_exactly_the_rules_that_run_it(demo_run, workers, dag):
    expected = module_expectations(demo_run, dag)
    package = sorted(expected)
    planned = check_module_edits(workers, expected, package)
    # Spot checks of the derivation itself.
    assert "fit_domain" in expected["src/dpo_eval/analysis/lmm/optimisation.py"] and "ingest" not in expected["src/dpo_eval/analysis/lmm/optimisation.py"]
    assert "score" in expected["src/dpo_eval/core/codebook.py"] and "reliability" in expected["src/dpo_eval/core/codebook.py"]
    generator = [module for module in package if module.startswith("src/dpo_eval/simulate/")]
    assert generator and all(expected[module] == expected_rules(dag, {"evaluation_report"})
                             for module in generator)
    assert planned["src/dpo_eval/analysis/models.py"]["fit_domain"] == 3


# --------------------------------------------------------------------------- withdrawn institution

INSTITUTION_HEADERS = ("Образовательная организация", "Ваша организация")


def drop_rows_of(path: Path, name: str, sheet: str | None = None) -> int:
    """Remove from a raw export every row whose institution is ``name`` (compared as ingest
    compares them); returns how many rows were removed."""
    from dpo_eval.core.readers import read_export
    from dpo_eval.core.text import fold

    table = read_export(path, sheet)
    column = next(c for c in table.frame.columns if fold(c) in {fold(h) for h in INSTITUTION_HEADERS})
    if path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path)
        worksheet = book[sheet]
        header = [cell.value for cell in worksheet[1]]
        index = header.index(column) + 1
        doomed = [row for row in range(2, worksheet.max_row + 1)
                  if fold(str(worksheet.cell(row, index).value or "")) == fold(name)]
        for row in reversed(doomed):
            worksheet.delete_rows(row)
        book.save(path)
        return len(doomed)
    text = path.read_bytes().decode(table.encoding)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=table.delimiter))
    index = rows[0].index(column)
    kept = [rows[0]] + [row for row in rows[1:] if fold(row[index]) != fold(name)]
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=table.delimiter,
               lineterminator="\r\n" if "\r\n" in text else "\n").writerows(kept)
    path.write_bytes(buffer.getvalue().encode(table.encoding))
    return len(rows) - len(kept)


def drop_lines_of(path: Path, institution: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(institution + ",")]
    assert len(kept) == len(lines) - 1, (path, institution)
    path.write_text("".join(kept), encoding="utf-8")


@pytest.mark.pipeline
def test_a_withdrawn_institution_leaves_no_file_under_results(workers):
    """A school withdrawn from the registry, the recipients and the data: after a successful
    rerun no file under results/ is its (report, e-mail) or mentions it; `send` reads only the
    outbox directory, which holds the current recipients' messages only."""
    project = workers[-1]
    school = "SCH001"
    results = project / "results"
    assert (results / "reports" / "institutions" / f"{school}.pdf").is_file()
    assert (results / "outbox" / f"{school}.eml").is_file()
    registry = pd.read_csv(project / "data" / "raw" / "institutions.csv", dtype=str)
    name = registry.set_index("id").loc[school, "name"]
    config = yaml.safe_load((project / "config" / "config.yaml").read_text(encoding="utf-8"))
    removed = 0
    for wave in config["waves"].values():
        for path in wave["files"]:
            removed += drop_rows_of(project / path, name, wave.get("sheet"))
    for path in config["needs"]["files"]:
        removed += drop_rows_of(project / path, name)
    assert removed > 0
    drop_lines_of(project / "data" / "raw" / "institutions.csv", school)
    drop_lines_of(project / "config" / "recipients.csv", school)
    use_test_secret(project)   # no longer the demo study: the demo secret is refused

    run_snakemake(project, "--cores", "2")

    remaining = set(registry.loc[(registry["type"] == "school") & (registry["id"] != school), "id"])
    reports = {p.stem for p in (results / "reports" / "institutions").glob("*.pdf")}
    assert reports == remaining
    outbox = {p.stem for p in (results / "outbox").glob("*.eml")}
    manifest = pd.read_csv(results / "outbox" / "manifest.csv")
    assert outbox == set(manifest["institution"]) and school not in outbox
    for path in results.rglob("*"):
        assert school not in path.name, path
        if path.is_file() and path.suffix in (".csv", ".json", ".eml"):
            assert school not in path.read_text(encoding="utf-8", errors="replace"), path
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if member.startswith("dpo_eval_reproduction/results/"):
                        assert school not in archive.read(member).decode("utf-8", "replace"), member

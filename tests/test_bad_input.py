"""Bad input: each problem fails with a message naming the file, row and column and the fix,
and leaves no partial output."""

import copy
import shutil
from pathlib import Path

import pytest

from conftest import REPO, copy_project, run_snakemake
from dpo_eval.errors import InputError, InputErrors
from dpo_eval.settings import IngestSettings
from dpo_eval.steps import ingest as ingest_step

PRE = "pre_entry_google.csv"
OUTPUTS = ("responses", "respondents", "flow", "match_audit", "duplicates", "invalid_values")


@pytest.fixture
def study(tmp_path, demo_config):
    """A writable copy of the demo study and a config pointing to it."""
    raw = tmp_path / "raw"
    shutil.copytree(REPO / "data" / "raw", raw)
    config = copy.deepcopy(demo_config)
    for wave in config["waves"].values():
        wave["files"] = [str(raw / Path(f).name) for f in wave["files"]]
    config["needs"]["files"] = [str(raw / Path(f).name) for f in config["needs"]["files"]]
    config["registry"] = str(raw / "institutions.csv")
    return raw, config


def ingest_fails(config, tmp_path) -> str:
    outputs = {name: str(tmp_path / "results" / f"{name}.csv") for name in OUTPUTS}
    with pytest.raises((InputError, InputErrors)) as error:
        ingest_step.ingest(IngestSettings.from_config(config), config["registry"], config["codebook"],
                           outputs, results_dir=tmp_path / "results")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    return str(error.value)


def edit(path: Path, old: str, new: str, count: int = 1, encoding: str = "utf-8") -> None:
    text = path.read_text(encoding=encoding)
    assert old in text
    path.write_text(text.replace(old, new, count), encoding=encoding)


def test_missing_required_column_lists_closest_headers(study, tmp_path):
    raw, config = study
    edit(raw / PRE, "Код участника (выдаётся организатором курса)", "Шифр")
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 1: required column for 'participant_code' not found" in message
    assert "closest headers" in message and "What to do: rename the column" in message


def test_unknown_label_names_row_column_and_fix(study, tmp_path):
    raw, config = study
    lines = (raw / PRE).read_text(encoding="utf-8").split("\n")
    lines[4] = lines[4].replace("Скорее", "Абсолютно", 1)
    (raw / PRE).write_text("\n".join(lines), encoding="utf-8")
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 5, column 'Оцените, насколько" in message
    assert "is not a label of scale 'agree5'" in message and "add it as a variant" in message


def test_out_of_range_values_fail_by_default_listing_every_cell(study, tmp_path, demo_truth):
    raw, config = study
    config["cleaning"].pop("out_of_range")
    message = ingest_fails(config, tmp_path)
    for cell in demo_truth["out_of_range"]:
        assert f"{cell['file']}, row {cell['row']}, column '{cell['column']}': value '{cell['value']}' is outside the scale 1..5" in message
    assert f"{len(demo_truth['out_of_range'])} problem(s)" in message


def test_unreadable_encoding(study, tmp_path):
    raw, config = study
    text = (raw / PRE).read_text(encoding="utf-8")
    (raw / PRE).write_bytes(text.encode("utf-16"))
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}: is not a text file in UTF-8 or Windows-1251" in message and "What to do" in message


def test_empty_file(study, tmp_path):
    raw, config = study
    (raw / PRE).write_bytes(b"")
    assert f"{PRE}: is empty" in ingest_fails(config, tmp_path)


def test_duplicated_header(study, tmp_path):
    raw, config = study
    edit(raw / PRE, "Контактный телефон", "Должность")
    message = ingest_fails(config, tmp_path)
    assert f"{PRE}, row 1, column 'Должность': duplicated header" in message


def test_missing_wave_file(study, tmp_path):
    raw, config = study
    (raw / "followup_excel_ru.csv").unlink()
    message = ingest_fails(config, tmp_path)
    assert "followup_excel_ru.csv: does not exist" in message and "config/config.yaml" in message


def test_xlsx_with_several_candidate_sheets(study, tmp_path):
    raw, config = study
    config["waves"]["post"].pop("sheet")
    message = ingest_fails(config, tmp_path)
    assert "post_exit_yandex.xlsx: has several sheets (Ответы, Сводка)" in message
    assert "set `sheet:`" in message


def test_unknown_institution_suggests_the_registry_name(study, tmp_path):
    raw, config = study
    edit(raw / PRE, "МБОУ СОШ № 3 (г. Хабаровск)", "МБОУ СОШ №3 г Хабаровск")
    message = ingest_fails(config, tmp_path)
    assert "is not in the registry (did you mean 'МБОУ СОШ № 3 (г. Хабаровск)'?)" in message


@pytest.mark.pipeline
def test_pipeline_stops_with_the_message_and_writes_nothing(tmp_path):
    project = copy_project(tmp_path / "project")
    lines = (project / "data" / "raw" / PRE).read_text(encoding="utf-8").split("\n")
    lines[2] = lines[2].replace("Скорее", "Абсолютно", 1)
    (project / "data" / "raw" / PRE).write_text("\n".join(lines), encoding="utf-8")
    result = run_snakemake(project, "--cores", "2", check=False)
    assert result.returncode != 0
    assert f"{PRE}, row 3, column" in (project / "logs" / "ingest.log").read_text(encoding="utf-8")
    assert "row 3, column" in result.stderr + result.stdout
    assert not (project / "results" / "clean" / "responses.csv").exists()
    assert not (project / "results" / "tables" / "flow.csv").exists()


@pytest.mark.pipeline
def test_pipeline_names_a_missing_wave_file(tmp_path):
    project = copy_project(tmp_path / "project")
    (project / "data" / "raw" / "followup_excel_ru.csv").unlink()
    result = run_snakemake(project, "-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert "data/raw/followup_excel_ru.csv" in result.stderr + result.stdout

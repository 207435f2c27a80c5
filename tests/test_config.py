"""The configuration is validated against its schema, naming the offending key."""

import copy

import pytest
import yaml

from conftest import REPO, copy_project, run_snakemake
from dpo_eval.core.config import (MIN_CELL_ADVISED, MIN_CELL_FLOOR, ConfigError, load_config, min_cell_warning,
                             validate_config)

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def demo():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))


def test_bundled_config_is_valid():
    assert load_config(REPO / "config" / "config.yaml", SCHEMA)["reports"]["min_cell"] == 5


def test_unknown_key_is_named():
    config = demo()
    config["analysis"]["covariats"] = ["role"]
    with pytest.raises(ConfigError, match=r"unknown key 'analysis\.covariats'"):
        validate_config(config, SCHEMA)


def test_wrong_type_is_named():
    config = demo()
    config["reports"]["min_cell"] = "five"
    with pytest.raises(ConfigError, match=r"key 'reports\.min_cell': 'five' is not of type 'integer'"):
        validate_config(config, SCHEMA)


def test_every_problem_is_listed_at_once():
    config = copy.deepcopy(demo())
    config["cleaning"]["out_of_range"] = "ignore"
    config["extra"] = 1
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert "cleaning.out_of_range" in str(error.value) and "'extra'" in str(error.value)


def test_snakemake_refuses_a_bad_config_when_building_the_dag(tmp_path):
    project = copy_project(tmp_path / "project")
    path = project / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["reports"]["min_cel"] = 5
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_snakemake(project, "-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert "unknown key 'reports.min_cel'" in result.stdout + result.stderr
    # One clean message: no Python traceback frames ('File "...", line N') on the console.
    assert result.stderr.startswith("ERROR: config/config.yaml is not valid")
    assert 'File "' not in result.stdout + result.stderr


@pytest.mark.parametrize("value", [0, 1, 2])
def test_a_disclosure_threshold_below_three_is_refused_with_the_reason(value):
    config = demo()
    config["reports"]["min_cell"] = value
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    message = str(error.value)
    assert f"key 'reports.min_cell': {value} is less than the minimum of {MIN_CELL_FLOOR}" in message
    assert "shows their own answers" in message and "set reports.min_cell to 5" in message


def test_a_disclosure_threshold_given_as_text_is_refused():
    config = demo()
    config["reports"]["min_cell"] = "5"
    with pytest.raises(ConfigError, match=r"key 'reports\.min_cell': '5' is not of type 'integer'"):
        validate_config(config, SCHEMA)


def test_schema_floor_is_the_package_floor_and_three_or_four_warn():
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    assert schema["properties"]["reports"]["properties"]["min_cell"]["minimum"] == MIN_CELL_FLOOR == 3
    for value in (3, 4):
        config = demo()
        config["reports"]["min_cell"] = value
        validate_config(config, SCHEMA)
        assert f"reports.min_cell = {value}" in min_cell_warning(value)
    assert min_cell_warning(MIN_CELL_ADVISED) is None and min_cell_warning(7) is None


def test_snakemake_warns_about_a_low_threshold_when_building_the_dag(tmp_path):
    project = copy_project(tmp_path / "project")
    path = project / "config" / "config.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  min_cell: 5", "  min_cell: 4"), encoding="utf-8")
    result = run_snakemake(project, "-n", "--cores", "1", check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WARNING: reports.min_cell = 4" in result.stderr

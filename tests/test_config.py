"""The configuration is validated against its schema, naming the offending key."""

import copy

import pytest
import yaml

from conftest import REPO, copy_project, run_snakemake
from dpo_eval.config import ConfigError, load_config, validate_config

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

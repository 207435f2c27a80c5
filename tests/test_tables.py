"""The table registry (dpo_eval.core.study) and the data dictionary describe the same tables."""

from pathlib import Path

import yaml

from dpo_eval.core import study

DICTIONARY = Path(study.__file__).with_name("data_dictionary.yaml")


def test_the_table_registry_lists_exactly_the_tables_the_data_dictionary_describes():
    registry = {*(f"clean/{name}.csv" for name in study.CLEAN_TABLES),
                *(f"tables/{name}.csv" for name in study.ANALYSIS_TABLES),
                *(f"audit/{name}.csv" for name in study.AUDIT_TABLES),
                *(f"reports/{name}.csv" for name in study.REPORT_TABLES)}
    described = set(yaml.safe_load(DICTIONARY.read_text(encoding="utf-8"))["files"])
    assert registry == described, (sorted(registry - described), sorted(described - registry))


def test_the_reports_read_only_registered_tables():
    assert set(study.EVALUATION_TABLES) | set(study.INSTITUTION_TABLES) <= set(study.ANALYSIS_TABLES)

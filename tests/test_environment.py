"""The three descriptions of the environment agree: requirements.in, the lock file, environment.yml."""

import re

import yaml

from conftest import REPO


def pins(text: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", text, re.M)}


def test_lock_file_pins_every_direct_dependency_with_hashes():
    direct = pins((REPO / "requirements.in").read_text())
    lock_text = (REPO / "requirements.lock").read_text()
    locked = pins(lock_text)
    for name, version in direct.items():
        assert locked.get(name) == version, name
    blocks = re.split(r"\n(?=[a-z0-9])", lock_text.split("\n", 1)[1])
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)


def test_environment_yml_carries_the_same_versions():
    locked = pins((REPO / "requirements.lock").read_text())
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda_pins = dict(d.split("=", 1) for d in env["dependencies"] if isinstance(d, str))
    assert conda_pins.pop("python") == "3.11"
    assert conda_pins.pop("snakemake-minimal") == locked["snakemake"]
    for name, version in conda_pins.items():
        assert locked[name] == version, name

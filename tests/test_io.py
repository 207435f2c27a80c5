"""Writing outputs: atomic (all or nothing, no partial file), deterministic, and with the
ordinary permissions of the user's umask."""

import os
import stat

import pandas as pd
import pytest

from dpo_eval.core import io


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_permissions_of_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    table, payload, raw = tmp_path / "t.csv", tmp_path / "sub" / "p.json", tmp_path / "r.pdf"
    io.write_outputs({table: pd.DataFrame({"a": [1.5]}), payload: {"x": 1}, raw: b"%PDF-"})
    for path in (table, payload, raw):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_a_rewrite_keeps_the_umask_mode_and_replaces_the_content(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "t.csv"
    io.write_outputs({path: b"old"})
    io.write_outputs({path: b"new"})
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_a_failing_serialisation_writes_nothing(tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.json"
    with pytest.raises(TypeError):
        io.write_outputs({first: pd.DataFrame({"a": [1]}), second: {"not json": object()}})
    assert list(tmp_path.iterdir()) == []


def test_a_failing_write_leaves_the_old_file_and_no_part_file(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_bytes(b"old")

    def replace_fails(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", replace_fails)
    with pytest.raises(OSError, match="disk full"):
        io.write_outputs({path: b"new"})
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_tables_are_written_byte_stable(tmp_path):
    frame = pd.DataFrame({"x": [0.1 + 0.2, 1 / 3], "name": ["а", "b"]})
    io.write_outputs({tmp_path / "a.csv": frame})
    io.write_outputs({tmp_path / "b.csv": frame.copy()})
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() == "x,name\n0.3,а\n0.3333333333,b\n".encode()
